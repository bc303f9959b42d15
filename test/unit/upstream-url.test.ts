import { describe, expect, it } from 'vitest';
import { LOCATION_PATTERN } from '../../src/vertex/path-params.ts';
import { chatCompletionsUrl, vertexOrigin } from '../../src/vertex/upstream-url.ts';

describe('vertexOrigin', () => {
  it.each([
    ['global', 'aiplatform.googleapis.com'],
    ['us', 'aiplatform.us.rep.googleapis.com'],
    ['eu', 'aiplatform.eu.rep.googleapis.com'],
    ['us-central1', 'us-central1-aiplatform.googleapis.com'],
    ['europe-west4', 'europe-west4-aiplatform.googleapis.com'],
    ['northamerica-northeast1', 'northamerica-northeast1-aiplatform.googleapis.com'],
  ])('%s is served by https://%s', (location, host) => {
    expect(LOCATION_PATTERN.test(location)).toBe(true);
    expect(vertexOrigin(location)).toBe(`https://${host}`);
  });

  it('never invents a global- regional host', () => {
    expect(vertexOrigin('global')).not.toContain('global-');
  });
});

describe('chatCompletionsUrl', () => {
  it('builds the v1 openapi URL on the regional host', () => {
    const url = chatCompletionsUrl(
      { version: 'v1', project: 'my-project', location: 'us-central1', endpoint: 'openapi' },
      null,
    );
    expect(url).toBe(
      'https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/us-central1/endpoints/openapi/chat/completions',
    );
  });

  it('keeps v1beta1 and a numeric endpoint id', () => {
    const url = chatCompletionsUrl(
      { version: 'v1beta1', project: '123456789', location: 'global', endpoint: '987654321' },
      null,
    );
    expect(url).toBe(
      'https://aiplatform.googleapis.com/v1beta1/projects/123456789/locations/global/endpoints/987654321/chat/completions',
    );
  });

  it('uses the multi-region host for us and eu', () => {
    const url = new URL(
      chatCompletionsUrl(
        { version: 'v1', project: 'my-project', location: 'eu', endpoint: 'openapi' },
        null,
      ),
    );
    expect(url.host).toBe('aiplatform.eu.rep.googleapis.com');
    expect(url.pathname).toBe(
      '/v1/projects/my-project/locations/eu/endpoints/openapi/chat/completions',
    );
  });

  it('replaces only the origin when a base origin is configured', () => {
    const url = chatCompletionsUrl(
      { version: 'v1', project: 'my-project', location: 'europe-west4', endpoint: 'openapi' },
      'http://127.0.0.1:8787',
    );
    expect(url).toBe(
      'http://127.0.0.1:8787/v1/projects/my-project/locations/europe-west4/endpoints/openapi/chat/completions',
    );
  });

  it('keeps the host fixed for every location shape the pattern accepts', () => {
    for (const location of ['global', 'us', 'eu', 'asia-southeast1', 'me-west1', 'africa-south1']) {
      expect(LOCATION_PATTERN.test(location)).toBe(true);
      const url = new URL(
        chatCompletionsUrl(
          { version: 'v1', project: 'p-123456', location, endpoint: 'openapi' },
          null,
        ),
      );
      expect(url.protocol).toBe('https:');
      expect(url.hostname.endsWith('.googleapis.com')).toBe(true);
      expect(url.username).toBe('');
      expect(url.search).toBe('');
      expect(url.hash).toBe('');
      expect(url.pathname.split('/')).toEqual([
        '',
        'v1',
        'projects',
        'p-123456',
        'locations',
        location,
        'endpoints',
        'openapi',
        'chat',
        'completions',
      ]);
    }
  });
});
