import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomInt,
} from 'node:crypto';

/** The JSON Google hands out when a service-account key is created, field for field. */
export interface ServiceAccountKey {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: 'googleapis.com';
}

export interface GenerateServiceAccountKeyOptions {
  tokenUri: string;
  projectId?: string;
  clientEmail?: string;
}

export interface GeneratedServiceAccountKey {
  key: ServiceAccountKey;
  publicKeyPem: string;
  /** The same public key, ready for signature verification without re-parsing the PEM. */
  publicKey: KeyObject;
}

export const DEFAULT_PROJECT_ID = 'emulator-project';

export function generateServiceAccountKey(
  options: GenerateServiceAccountKeyOptions,
): GeneratedServiceAccountKey {
  const projectId = options.projectId ?? DEFAULT_PROJECT_ID;
  const clientEmail = options.clientEmail ?? `gateway@${projectId}.iam.gserviceaccount.com`;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const key: ServiceAccountKey = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey,
    client_email: clientEmail,
    // Google client ids are 21-digit decimal numbers.
    client_id: `1${Array.from({ length: 20 }, () => randomInt(10)).join('')}`,
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: options.tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
  return { key, publicKeyPem: publicKey, publicKey: createPublicKey(publicKey) };
}
