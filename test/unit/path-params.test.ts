import { describe, expect, it } from 'vitest';
import {
  API_VERSIONS,
  ENDPOINT_PATTERN,
  isApiVersion,
  LOCATION_PATTERN,
  PROJECT_PATTERN,
} from '../../src/vertex/path-params.ts';

// Values a caller could put in a path segment to move the request to another host or path.
const HOSTILE = [
  'evil.com%2Fx',
  'evil.com/x',
  'us-central1.evil.com',
  'us-central1@evil.com',
  'us-central1:443',
  '..',
  '.',
  '%23',
  '#',
  '?',
  'us-central1#',
  'us-central1?x',
  'us-central1/',
  '/us-central1',
  'us-central1\\x',
  'US-CENTRAL1',
  'My-Project',
  'us central1',
  ' us-central1',
  'us-central1 ',
  'us-central1\n',
  '',
];

describe('LOCATION_PATTERN', () => {
  it.each([
    'global',
    'us',
    'eu',
    'us-central1',
    'us-east5',
    'europe-west4',
    'europe-west12',
    'asia-northeast1',
    'northamerica-northeast1',
    'me-central2',
  ])('accepts %s', (location) => {
    expect(LOCATION_PATTERN.test(location)).toBe(true);
  });

  it('keeps {location}-aiplatform within a 63-character DNS label', () => {
    const longest = `${'a'.repeat(20)}-${'b'.repeat(20)}12`;
    expect(LOCATION_PATTERN.test(longest)).toBe(true);
    expect(`${longest}-aiplatform`.length).toBeLessThanOrEqual(63);
    expect(LOCATION_PATTERN.test(`${'a'.repeat(21)}-central1`)).toBe(false);
    expect(LOCATION_PATTERN.test(`us-${'b'.repeat(21)}1`)).toBe(false);
    expect(LOCATION_PATTERN.test(`${'a'.repeat(6000)}-b1`)).toBe(false);
  });

  it.each([...HOSTILE, 'global-x', 'usa', 'europe', 'us-central', 'us-central123', 'us-1'])(
    'rejects %j',
    (location) => {
      expect(LOCATION_PATTERN.test(location)).toBe(false);
    },
  );
});

describe('PROJECT_PATTERN', () => {
  it.each([
    'my-project',
    'abcdef',
    'a23456789012345678901234567890',
    'proj-42',
    '123456789012',
    '1',
  ])('accepts %s', (project) => {
    expect(PROJECT_PATTERN.test(project)).toBe(true);
  });

  it.each([
    ...HOSTILE,
    'abcde', // too short
    'a234567890123456789012345678901', // 31 chars
    '1project',
    'project-',
    'my_project',
    'example.com:my-project',
    '123456789012345678901', // 21 digits
  ])('rejects %j', (project) => {
    expect(PROJECT_PATTERN.test(project)).toBe(false);
  });
});

describe('ENDPOINT_PATTERN', () => {
  it.each(['openapi', 'a', 'my-vllm-endpoint', `a${'b'.repeat(62)}`, '1234567890123456789'])(
    'accepts %s',
    (endpoint) => {
      expect(ENDPOINT_PATTERN.test(endpoint)).toBe(true);
    },
  );

  it.each([
    ...HOSTILE,
    `a${'b'.repeat(63)}`, // 64 chars
    'endpoint-',
    '-endpoint',
    '1abc',
    'OpenAPI',
  ])('rejects %j', (endpoint) => {
    expect(ENDPOINT_PATTERN.test(endpoint)).toBe(false);
  });
});

describe('isApiVersion', () => {
  it('accepts exactly v1 and v1beta1', () => {
    expect(API_VERSIONS).toEqual(['v1', 'v1beta1']);
    expect(isApiVersion('v1')).toBe(true);
    expect(isApiVersion('v1beta1')).toBe(true);
  });

  it.each(['v2', 'v1beta', 'V1', 'v1alpha1', '', 'v1/', '..'])('rejects %j', (version) => {
    expect(isApiVersion(version)).toBe(false);
  });
});
