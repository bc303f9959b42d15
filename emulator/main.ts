import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startEmulator } from './server.ts';

const USAGE =
  'usage: node emulator/main.ts [--port 8788] [--host 127.0.0.1] [--token-ttl 3599] [--write-key FILE]';

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    console.error(`--${name} must be a non-negative integer\n${USAGE}`);
    process.exit(2);
  }
  return parsed;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'token-ttl': { type: 'string' },
    'write-key': { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const emulator = await startEmulator({
  port: integer('port', values.port, 8788),
  host: values.host ?? '127.0.0.1',
  tokenTtlSeconds: integer('token-ttl', values['token-ttl'], 3599),
});
if (values['write-key']) {
  // Written before the ready line, so a harness that waits for the line can read the key.
  writeFileSync(
    values['write-key'],
    `${JSON.stringify(emulator.createServiceAccount(), null, 2)}\n`,
    {
      mode: 0o600,
    },
  );
}
console.log(`vertex-emulator listening on ${emulator.url}`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
