import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { devVarsHaveServiceAccountKey } from '../../scripts/dev-vars.ts';

// Whether `npm start` talks to Google or runs its demo is decided by this one check.

const dir = mkdtempSync(join(tmpdir(), 'dev-vars-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (text: string) => {
  const path = join(dir, `${Math.random()}.vars`);
  writeFileSync(path, text);
  return path;
};

describe('devVarsHaveServiceAccountKey', () => {
  it('takes .dev.vars.example, copied unchanged, for a file without a key', () => {
    expect(
      devVarsHaveServiceAccountKey(resolve(import.meta.dirname, '../../.dev.vars.example')),
    ).toBe(false);
  });

  it.each([
    ['GOOGLE_SERVICE_ACCOUNT_KEY=\n\n# a comment\nGATEWAY_API_KEYS=k\n', false],
    ['GOOGLE_SERVICE_ACCOUNT_KEY=""\n', false],
    ['GOOGLE_SERVICE_ACCOUNT_KEY=   \n', false],
    ['GOOGLE_SERVICE_ACCOUNT_KEY=eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0=\n', true],
    ['GOOGLE_SERVICE_ACCOUNT_KEY=\'{"type":"service_account"}\'\n', true],
    ['export GOOGLE_SERVICE_ACCOUNT_KEY=eyJ0eXBlIjoi\n', true],
  ])('reads %j as a key: %s', (text, expected) => {
    expect(devVarsHaveServiceAccountKey(file(text))).toBe(expected);
  });

  it('takes a missing file for no key', () => {
    expect(devVarsHaveServiceAccountKey(join(dir, 'absent'))).toBe(false);
  });
});
