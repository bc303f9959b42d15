import { expect } from 'vitest';

/**
 * Asserts that no `width`-character piece of `secret` appears in `output`, so a secret printed
 * whole, cut short, or wrapped across lines is caught, in the very form it was handed over
 * (a base64 setting contains neither "PRIVATE KEY" nor any line of the PEM inside it).
 */
export function expectNoPieceOf(output: string, secret: string, width = 24): void {
  expect(secret.length).toBeGreaterThanOrEqual(width);
  for (let at = 0; at + width <= secret.length; at += width) {
    expect(output).not.toContain(secret.slice(at, at + width));
  }
}

export { pemBody } from '../support/pem-body.ts';
