/**
 * Starts the Vertex emulator as its own Node process (the same one the e2e suite and `npm start`
 * use) and hands back its URL and an admin client.
 */
export interface EmulatorProcess {
  url: string;
  admin<T>(path: string, init?: RequestInit): Promise<T>;
  stop(): Promise<void>;
}

export async function startEmulatorProcess(): Promise<EmulatorProcess> {
  const root = new URL('../../', import.meta.url);
  const child = new Deno.Command(new URL('node_modules/.bin/node', root).pathname, {
    args: [new URL('emulator/main.ts', root).pathname, '--port', '0'],
    stdout: 'piped',
    stderr: 'inherit',
  }).spawn();

  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = '';
  let url: string | undefined;
  while (url === undefined) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`emulator exited before it was ready: ${output}`);
    output += value;
    url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done);
  })();

  return {
    url,
    async admin<T>(path: string, init?: RequestInit): Promise<T> {
      const response = await fetch(`${url}/__emulator/${path}`, init);
      if (!response.ok)
        throw new Error(`emulator ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    },
    async stop() {
      child.kill('SIGTERM');
      await child.status;
      await drained;
    },
  };
}
