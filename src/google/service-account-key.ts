import { z } from 'zod';
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

const KeyFile = z.looseObject({
  type: z.literal('service_account', { error: 'its "type" must be "service_account"' }),
  client_email: z
    .string({ error: 'it has no "client_email"' })
    .min(1, 'its "client_email" is empty'),
  private_key_id: z
    .string({ error: 'it has no "private_key_id"' })
    .min(1, 'its "private_key_id" is empty'),
  private_key: z.string({ error: 'it has no "private_key"' }),
  project_id: z.string().optional(),
  token_uri: z.string().optional(),
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
  if (!privateKeyPem) throw new Error('has a "private_key" that is not a PEM private key');
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
