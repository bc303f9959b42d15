/**
 * `npm run new-key -- <name> [--models m1,m2] [--projects p1,p2] [--rpm N]`
 *
 * Prints a new random client key and the GATEWAY_KEYS entry that admits it. Only the key's
 * SHA-256 goes into the configuration; the key itself is printed once, for the team that will
 * use it, and is not stored anywhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { parseKeyPolicies } from '../src/auth/key-policy.ts';

const USAGE =
  'usage: npm run new-key -- <name> [--models google/gemini-2.5-flash,gemini-2.5-*] [--projects my-project] [--rpm 60]';

/** A key and its entry, checked by the same parser the gateway runs on GATEWAY_KEYS. */
export function newKey(args: string[]): { key: string; entry: Record<string, unknown> } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      // Repeated flags add to the list, as `--models a,b` does.
      models: { type: 'string', multiple: true },
      projects: { type: 'string', multiple: true },
      rpm: { type: 'string' },
    },
  });
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) throw new Error(USAGE);
  // 256 random bits; the prefix makes a leaked key easy to recognise in a scanner or a diff.
  const key = `vgw-${randomBytes(32).toString('base64url')}`;
  const entry: Record<string, unknown> = {
    name,
    sha256: createHash('sha256').update(key, 'utf8').digest('hex'),
  };
  // Repeats are dropped, as the gateway's parser would; the printed entry shows each item once.
  const list = (flags: string[]) => [
    ...new Set(
      flags
        .join(',')
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean),
    ),
  ];
  if (values.models !== undefined) entry.models = list(values.models);
  if (values.projects !== undefined) entry.projects = list(values.projects);
  if (values.rpm !== undefined)
    entry.rpm = /^\d+$/.test(values.rpm) ? Number(values.rpm) : values.rpm;
  parseKeyPolicies(JSON.stringify([entry]));
  return { key, entry };
}

if (import.meta.main) {
  try {
    const { key, entry } = newKey(process.argv.slice(2));
    process.stdout.write(
      [
        `New client key for "${entry.name}". Give it to its users now: it is not stored anywhere.`,
        '',
        `  ${key}`,
        '',
        "Add this entry to the GATEWAY_KEYS JSON array (it holds only the key's SHA-256):",
        '',
        `  ${JSON.stringify(entry)}`,
        '',
      ].join('\n'),
    );
  } catch (error) {
    process.stderr.write(`new-key: ${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}
