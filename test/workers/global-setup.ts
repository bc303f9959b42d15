import type { TestProject } from 'vitest/node';
import { startEmulator } from '../../emulator/server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    emulatorUrl: string;
    serviceAccountKey: string;
  }
}

/** The emulator runs in Node; the Worker under test reaches it over loopback. */
export default async function setup(project: TestProject) {
  const emulator = await startEmulator();
  const key = emulator.createServiceAccount();
  project.provide('emulatorUrl', emulator.url);
  project.provide('serviceAccountKey', JSON.stringify(key));
  return () => emulator.close();
}
