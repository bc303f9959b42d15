/**
 * Google's formats for the parts of a Vertex resource name. Every value that ends up in an
 * upstream URL is checked against these first, so a path parameter can never change the host or
 * the path shape (`evil.com%2Fx`, `us-central1.evil.com`, `..`, `%23`, upper case all fail).
 */

export const API_VERSIONS = ['v1', 'v1beta1'] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];

/** Project ids (6-30 chars, lower case, start with a letter) or project numbers. */
export const PROJECT_PATTERN = /^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$/;

/**
 * `global`, the `us`/`eu` multi-regions, or any region; availability is Google's to decide. Each
 * word is bounded (the longest region today is `northamerica-northeast1`), so `{location}-aiplatform`
 * always fits a DNS label: an unbounded one could never resolve, yet would be retried and logged
 * at any length a header allows.
 */
export const LOCATION_PATTERN = /^(?:global|us|eu|[a-z]{1,20}-[a-z]{1,20}[0-9]{1,2})$/;

/**
 * The endpoint for Gemini and Model Garden models, named `publisher/model`. Any other endpoint is
 * a self-deployed one, where the model is named as its deployer chose.
 */
export const MODEL_GARDEN_ENDPOINT = 'openapi';

/** `openapi`, a user-chosen endpoint id, or a generated numeric id. */
export const ENDPOINT_PATTERN = /^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[0-9]{1,30})$/;

export const isApiVersion = (value: string): value is ApiVersion =>
  value === 'v1' || value === 'v1beta1';
