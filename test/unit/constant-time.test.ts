import { describe, expect, it } from 'vitest';
import { secretsEqual } from '../../src/auth/constant-time.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('secretsEqual', () => {
  it.each([
    ['gw-key-1', 'gw-key-1', true],
    ['gw-key-1', 'gw-key-2', false],
    ['gw-key', 'gw-key-1', false],
    ['gw-key-1', 'gw-key', false],
    ['gw-key-1\u0000', 'gw-key-1', false],
    ['', 'gw-key-1', false],
    ['', '', true],
    ['ключ-1', 'ключ-1', true],
  ])('%j against %j is %s', (presented, known, equal) => {
    expect(secretsEqual(bytes(presented), bytes(known))).toBe(equal);
  });
});
