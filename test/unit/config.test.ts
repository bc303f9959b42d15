import { describe, expect, it } from 'vitest';
import { type Config, parseConfig } from '../../src/config.ts';
import { configError } from './gateway-harness.ts';
import {
  CLIENT_EMAIL,
  GOOGLE_TOKEN_URI,
  KEY_PROJECT,
  keyFileJson,
  PRIVATE_KEY_ID,
  pemBody,
  testKeyPair,
} from './helpers.ts';

async function importsAsPkcs8(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pemBody(pem), 'base64');
  return crypto.subtle.importKey(
    'pkcs8',
    der,
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['sign'],
  );
}

function expectKeyParsed(config: Config): void {
  expect(config.serviceAccount).not.toBeNull();
  expect(config.serviceAccount?.clientEmail).toBe(CLIENT_EMAIL);
  expect(config.serviceAccount?.privateKeyId).toBe(PRIVATE_KEY_ID);
  expect(config.serviceAccount?.projectId).toBe(KEY_PROJECT);
  expect(config.serviceAccount?.tokenUri).toBe(GOOGLE_TOKEN_URI);
  expect(pemBody(config.serviceAccount?.privateKeyPem ?? '')).toBe(pemBody(testKeyPair().pkcs8Pem));
}

describe('GOOGLE_SERVICE_ACCOUNT_KEY', () => {
  it('accepts the key file as JSON', () => {
    expectKeyParsed(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson() }));
  });

  it('accepts the key file as base64-encoded JSON', () => {
    const encoded = Buffer.from(keyFileJson()).toString('base64');
    expectKeyParsed(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: encoded }));
  });

  it('accepts base64 wrapped over several lines and base64url', () => {
    const encoded = Buffer.from(keyFileJson()).toString('base64');
    const wrapped = encoded.match(/.{1,76}/g)?.join('\n') ?? '';
    expectKeyParsed(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: wrapped }));
    const url = Buffer.from(keyFileJson()).toString('base64url');
    expectKeyParsed(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: url }));
  });

  it('accepts a PEM whose line breaks are literal backslash-n', async () => {
    const pem = testKeyPair().pkcs8Pem.replace(/\n/g, '\\n');
    expect(pem).not.toContain('\n');
    const config = parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson({ private_key: pem }) });
    expectKeyParsed(config);
    await expect(importsAsPkcs8(config.serviceAccount?.privateKeyPem ?? '')).resolves.toBeDefined();
  });

  it('accepts a PKCS#1 private key and stores it as PKCS#8', async () => {
    const config = parseConfig({
      GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson({ private_key: testKeyPair().pkcs1Pem }),
    });
    expect(config.serviceAccount?.privateKeyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expectKeyParsed(config);
  });

  it('treats unset, empty and whitespace-only as not configured', () => {
    for (const value of [undefined, '', '   \n ']) {
      expect(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: value }).serviceAccount).toBeNull();
    }
  });

  const SECRET = 'Zq7SECRETPAYLOADxK9';
  const malformed: Array<[string, string]> = [
    ['truncated JSON', `{"type":"service_account","private_key":"${SECRET}`],
    ['neither JSON nor base64', `not json ${SECRET} !!`],
    ['base64 of something that is not JSON', Buffer.from(`hello ${SECRET}`).toString('base64')],
    [
      'another credential type',
      JSON.stringify({
        type: 'authorized_user',
        refresh_token: `1//${SECRET}`,
        client_secret: SECRET,
      }),
    ],
    ['JSON array', JSON.stringify([SECRET])],
    [
      'missing private_key',
      keyFileJson({ private_key: undefined, client_email: `${SECRET}@x.com` }),
    ],
    ['private_key that is not a PEM', keyFileJson({ private_key: `MIIEv${SECRET}` })],
    [
      'PEM with an unknown label',
      keyFileJson({
        private_key: `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${SECRET}\n-----END ENCRYPTED PRIVATE KEY-----\n`,
      }),
    ],
    [
      'PKCS#1 PEM whose body is not base64',
      keyFileJson({
        private_key: `-----BEGIN RSA PRIVATE KEY-----\nAA${SECRET}\n-----END RSA PRIVATE KEY-----\n`,
      }),
    ],
    ['empty client_email', keyFileJson({ client_email: '', private_key_id: SECRET })],
    ['token_uri not https', keyFileJson({ token_uri: `http://${SECRET.toLowerCase()}.com/token` })],
  ];

  it.each(malformed)(
    'rejects %s with a ConfigError that quotes nothing of the value',
    (_name, value) => {
      const error = configError({ GOOGLE_SERVICE_ACCOUNT_KEY: value });
      expect(error.variable).toBe('GOOGLE_SERVICE_ACCOUNT_KEY');
      expect(error.message).toContain('GOOGLE_SERVICE_ACCOUNT_KEY');
      const message = error.message.toLowerCase();
      for (const fragment of [SECRET, 'SECRETPAYLOAD', 'Zq7', 'xK9', 'MIIE', 'BEGIN', 'hello']) {
        expect(message).not.toContain(fragment.toLowerCase());
      }
      expect(message).not.toContain(pemBody(testKeyPair().pkcs8Pem).slice(40, 60).toLowerCase());
    },
  );

  it('rejects a non-string value', () => {
    const error = configError({ GOOGLE_SERVICE_ACCOUNT_KEY: { type: 'service_account' } });
    expect(error.variable).toBe('GOOGLE_SERVICE_ACCOUNT_KEY');
  });
});

describe('token_uri', () => {
  const tokenUriOf = (uri: string | undefined) =>
    parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson({ token_uri: uri }) }).serviceAccount
      ?.tokenUri;

  it('defaults to Google when the key has none', () => {
    expect(tokenUriOf(undefined)).toBe(GOOGLE_TOKEN_URI);
  });

  it.each([
    'https://oauth2.googleapis.com/token',
    'https://token.example.test:8443/oauth/token',
    'http://127.0.0.1:9000/token',
    'http://localhost:9000/token',
    'http://[::1]:9000/token',
  ])('accepts %s', (uri) => {
    expect(tokenUriOf(uri)).toBe(uri);
  });

  it.each([
    'http://evil.com/token',
    'http://127.0.0.1.evil.com/token',
    'http://localhost.evil.com/token',
    'https://user:password@oauth2.googleapis.com/token',
    'ftp://127.0.0.1/token',
    'not a url',
  ])('rejects %s', (uri) => {
    const error = configError({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson({ token_uri: uri }) });
    expect(error.variable).toBe('GOOGLE_SERVICE_ACCOUNT_KEY');
    expect(error.message).toContain('token_uri');
    expect(error.message).not.toContain(uri);
  });
});

describe('GATEWAY_API_KEYS', () => {
  it('splits a comma list and trims spaces around each key', () => {
    const config = parseConfig({
      GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(),
      GATEWAY_API_KEYS: ' key-one ,key-two,  , key-three ,',
    });
    expect(config.clientKeys).toEqual(['key-one', 'key-two', 'key-three']);
  });

  it('is empty when unset', () => {
    expect(parseConfig({}).clientKeys).toEqual([]);
  });

  it.each(['sk-café-7731', 'sk-\u{1F511}-7731', 'sk-tab\t-7731', 'sk-a space-7731'])(
    'refuses %j, which no client header could match, without echoing it',
    (key) => {
      const error = configError({
        GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(),
        GATEWAY_API_KEYS: `plain-key,${key}`,
      });
      expect(error.variable).toBe('GATEWAY_API_KEYS');
      expect(error.message).toContain('printable ASCII');
      expect(`${error.message} ${error.detail ?? ''}`).not.toContain('7731');
    },
  );

  it('without a service account is a ConfigError naming GATEWAY_API_KEYS, not the keys', () => {
    const error = configError({ GATEWAY_API_KEYS: 'sk-distinctive-7731' });
    expect(error.variable).toBe('GATEWAY_API_KEYS');
    expect(error.message).toContain('GOOGLE_SERVICE_ACCOUNT_KEY');
    expect(error.message).not.toContain('sk-distinctive-7731');
  });
});

describe('ALLOW_TOKEN_PASSTHROUGH', () => {
  it.each(['true', 'TRUE', ' True ', '1', 'yes', true])('%j means on', (value) => {
    expect(parseConfig({ ALLOW_TOKEN_PASSTHROUGH: value }).allowTokenPassthrough).toBe(true);
  });

  it.each(['false', 'FALSE', '0', 'no', '', '  ', false, undefined])('%j means off', (value) => {
    expect(parseConfig({ ALLOW_TOKEN_PASSTHROUGH: value }).allowTokenPassthrough).toBe(false);
  });

  it.each(['garbage-flag', 'on', 'enabled', '2'])('%j is a ConfigError', (value) => {
    const error = configError({ ALLOW_TOKEN_PASSTHROUGH: value });
    expect(error.variable).toBe('ALLOW_TOKEN_PASSTHROUGH');
    expect(error.message).not.toContain(value);
  });
});

describe('VERTEX_PROJECT', () => {
  it("defaults to the key's project_id", () => {
    expect(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson() }).defaultProject).toBe(
      KEY_PROJECT,
    );
  });

  it('overrides the key project when set', () => {
    const config = parseConfig({
      GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(),
      VERTEX_PROJECT: 'other-project-1',
    });
    expect(config.defaultProject).toBe('other-project-1');
  });

  it('is null with neither a key project nor VERTEX_PROJECT', () => {
    expect(parseConfig({}).defaultProject).toBeNull();
    const noProject = keyFileJson({ project_id: undefined });
    expect(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: noProject }).defaultProject).toBeNull();
  });

  it('accepts a project number', () => {
    expect(parseConfig({ VERTEX_PROJECT: '123456789012' }).defaultProject).toBe('123456789012');
  });

  it.each(['Bad_Project', 'evil.com', 'proj/../x', 'abc'])('rejects %j', (value) => {
    expect(configError({ VERTEX_PROJECT: value }).variable).toBe('VERTEX_PROJECT');
  });

  it('rejects a key whose project_id is not a project id when it becomes the default', () => {
    const error = configError({
      GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson({ project_id: 'Evil.Host/Path' }),
    });
    expect(error.variable).toBe('GOOGLE_SERVICE_ACCOUNT_KEY');
    expect(error.message).not.toContain('Evil.Host');
  });
});

describe('VERTEX_LOCATION', () => {
  it('defaults to us-central1', () => {
    expect(parseConfig({}).defaultLocation).toBe('us-central1');
  });

  it.each(['global', 'us', 'eu', 'europe-west4', 'northamerica-northeast1'])(
    'accepts %s',
    (loc) => {
      expect(parseConfig({ VERTEX_LOCATION: loc }).defaultLocation).toBe(loc);
    },
  );

  it.each(['US-CENTRAL1', 'us-central1.evil.com', 'us-central1/x', 'moon', 'us central1'])(
    'rejects %j',
    (loc) => {
      const error = configError({ VERTEX_LOCATION: loc });
      expect(error.variable).toBe('VERTEX_LOCATION');
      expect(error.message).not.toContain(loc);
    },
  );
});

describe('VERTEX_ALLOWED_PROJECTS', () => {
  const withKey = (allowed?: string) =>
    parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(), VERTEX_ALLOWED_PROJECTS: allowed });

  it('defaults to the default project only', () => {
    const allowed = withKey().allowedProjects;
    expect(allowed).not.toBe('*');
    expect([...(allowed as ReadonlySet<string>)]).toEqual([KEY_PROJECT]);
  });

  it('defaults to VERTEX_PROJECT when it overrides the key project', () => {
    const config = parseConfig({
      GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(),
      VERTEX_PROJECT: 'chosen-project',
    });
    expect([...(config.allowedProjects as ReadonlySet<string>)]).toEqual(['chosen-project']);
  });

  it('is empty with no default project', () => {
    const allowed = parseConfig({ ALLOW_TOKEN_PASSTHROUGH: 'true' }).allowedProjects;
    expect(allowed).not.toBe('*');
    expect((allowed as ReadonlySet<string>).size).toBe(0);
  });

  it('"*" allows any project, also inside a list', () => {
    expect(withKey('*').allowedProjects).toBe('*');
    expect(withKey('first-project, *').allowedProjects).toBe('*');
  });

  it('takes a comma list instead of the default', () => {
    const allowed = withKey(' first-project ,second-project,123456 ').allowedProjects;
    expect(allowed).not.toBe('*');
    expect([...(allowed as ReadonlySet<string>)].sort()).toEqual([
      '123456',
      'first-project',
      'second-project',
    ]);
    expect((allowed as ReadonlySet<string>).has(KEY_PROJECT)).toBe(false);
  });

  it('rejects an entry that is not a project id', () => {
    expect(configError({ VERTEX_ALLOWED_PROJECTS: 'good-project, Evil.com' }).variable).toBe(
      'VERTEX_ALLOWED_PROJECTS',
    );
  });
});

describe('VERTEX_BASE_URL', () => {
  it('is null when unset', () => {
    expect(parseConfig({}).upstreamOrigin).toBeNull();
  });

  it.each([
    ['https://vertex.internal.example', 'https://vertex.internal.example'],
    ['https://vertex.internal.example/', 'https://vertex.internal.example'],
    ['https://vertex.internal.example:8443', 'https://vertex.internal.example:8443'],
    ['http://127.0.0.1:8787', 'http://127.0.0.1:8787'],
    ['http://localhost:8787/', 'http://localhost:8787'],
    ['http://[::1]:8787', 'http://[::1]:8787'],
  ])('%s gives origin %s', (value, origin) => {
    expect(parseConfig({ VERTEX_BASE_URL: value }).upstreamOrigin).toBe(origin);
  });

  it.each([
    'https://vertex.internal.example/v1',
    'https://vertex.internal.example/?x=1',
    'https://vertex.internal.example/#frag',
    'http://vertex.internal.example',
    'http://evil.com:80',
    'https://user:pw@vertex.internal.example',
    'vertex.internal.example',
    'not a url',
  ])('rejects %s', (value) => {
    const error = configError({ VERTEX_BASE_URL: value });
    expect(error.variable).toBe('VERTEX_BASE_URL');
  });
});
