import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/**
 * Whether a `.dev.vars` file sets GOOGLE_SERVICE_ACCOUNT_KEY to something. Read as the dotenv
 * file it is, so the blank `GOOGLE_SERVICE_ACCOUNT_KEY=` line of `.dev.vars.example` counts as
 * unset and `npm start` still runs its demo. Shared by `npm start` and its e2e test.
 */
export function devVarsHaveServiceAccountKey(file: string): boolean {
  if (!existsSync(file)) return false;
  const value = parseEnv(readFileSync(file, 'utf8')).GOOGLE_SERVICE_ACCOUNT_KEY;
  return value !== undefined && value.trim() !== '';
}
