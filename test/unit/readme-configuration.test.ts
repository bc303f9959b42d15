import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config.ts';

// The README is the operator's reference: a variable the gateway reads but the README's table
// does not describe is a setting nobody can find.
const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
const tableRows = new Set(
  [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` +\|/gm)].map((match) => match[1]),
);

describe('the README configuration table', () => {
  it.each(CONFIG_VARIABLES)('describes %s', (variable) => {
    expect(tableRows).toContain(variable);
  });

  it('lists no variable the gateway does not read', () => {
    for (const row of tableRows) expect(CONFIG_VARIABLES).toContain(row);
  });

  it('documents the new-key command as package.json runs it', () => {
    const scripts = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8'),
    ).scripts as Record<string, string>;
    expect(scripts['new-key']).toBe('node scripts/new-key.ts');
    expect(readme).toContain('npm run new-key -- team-a');
  });
});
