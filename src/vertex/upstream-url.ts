import type { ApiVersion } from './path-params.ts';

export interface VertexTarget {
  version: ApiVersion;
  project: string;
  location: string;
  endpoint: string;
}

/**
 * The host Google's own genai SDK picks for a location: `global` has no regional prefix, the
 * `us`/`eu` multi-regions live under `rep.googleapis.com`, everything else is `{region}-`.
 * `location` must already match LOCATION_PATTERN.
 */
export function vertexOrigin(location: string): string {
  if (location === 'global') return 'https://aiplatform.googleapis.com';
  if (location === 'us' || location === 'eu') {
    return `https://aiplatform.${location}.rep.googleapis.com`;
  }
  return `https://${location}-aiplatform.googleapis.com`;
}

/** `baseOrigin` (VERTEX_BASE_URL) replaces Google's host, for emulators and private endpoints. */
export function chatCompletionsUrl(target: VertexTarget, baseOrigin: string | null): string {
  const origin = baseOrigin ?? vertexOrigin(target.location);
  return `${origin}/${target.version}/projects/${target.project}/locations/${target.location}/endpoints/${target.endpoint}/chat/completions`;
}
