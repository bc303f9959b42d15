import * as z from 'zod/mini';
import { isAllowedOutboundUrl } from '../url-policy.ts';
import { normalizePrivateKeyPem } from './pem.ts';

export interface ServiceAccountKey {
  clientEmail: string;
  privateKeyId: string;
  /** PKCS#8 PEM, ready for WebCrypto. */
  privateKeyPem: string;
  projectId: string | null;
  tokenUri: string;
}

const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

const requiredText = (field: string) =>
  z.string({ error: `it has no "${field}"` }).check(z.minLength(1, `its "${field}" is empty`));

const KeyFile = z.looseObject({
  type: z.literal('service_account', { error: 'its "type" must be "service_account"' }),
  client_email: requiredText('client_email'),
  private_key_id: requiredText('private_key_id'),
  private_key: z.string({ error: 'it has no "private_key"' }),
  project_id: z.optional(z.string({ error: 'its "project_id" must be a string' })),
  token_uri: z.optional(z.string({ error: 'its "token_uri" must be a string' })),
});

/**
 * Parses the key file's JSON, plain or base64-encoded. Failures throw a message that describes
 * what is wrong without quoting any of the value: it is a credential.
 */
export function parseServiceAccountKey(raw: string): ServiceAccountKey {
  const json = decodeKeyText(raw.trim());
  const parsed = KeyFile.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `is not a service-account key: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  const file = parsed.data;
  const privateKeyPem = normalizePrivateKeyPem(file.private_key);
  if (!privateKeyPem)
    throw new Error('has a "private_key" that is not a whole RSA private key in PEM form');
  const tokenUri = file.token_uri || GOOGLE_TOKEN_URI;
  if (!URL.canParse(tokenUri) || !isAllowedOutboundUrl(new URL(tokenUri))) {
    throw new Error('has a "token_uri" that is not https (plain http is allowed only on loopback)');
  }
  return {
    clientEmail: file.client_email,
    privateKeyId: file.private_key_id,
    privateKeyPem,
    projectId: file.project_id || null,
    tokenUri,
  };
}

function decodeKeyText(text: string): unknown {
  let jsonText = text;
  if (!text.startsWith('{')) {
    try {
      jsonText = atob(text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/'));
    } catch {
      throw new Error('is neither JSON nor base64-encoded JSON');
    }
  }
  try {
    return JSON.parse(jsonText);
  } catch {
    throw new Error('is neither JSON nor base64-encoded JSON');
  }
}
