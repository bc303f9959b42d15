/**
 * The floor: the cheapest thing a gateway can be on a runtime. It reads the client's bytes,
 * sends them to one fixed upstream URL with one fixed bearer, and returns the upstream response
 * object untouched. It parses nothing: no JSON, no routing, no auth, no token cache.
 *
 * It buffers the body (instead of piping request.body) because every real gateway must read the
 * body to validate it, and because a buffered body goes upstream with a content-length, so the
 * emulator does exactly the same work for this leg as for the gateway's.
 *
 * One file serves both runtimes: workerd passes bindings as `env`; `deno serve` passes
 * ServeHandlerInfo instead, so there the settings come from the environment.
 */
interface FloorEnv {
  FLOOR_UPSTREAM_URL?: string;
  FLOOR_TOKEN?: string;
}

interface FloorSettings {
  url: string;
  headers: Record<string, string>;
}

const deno = (globalThis as { Deno?: { env: { get(name: string): string | undefined } } }).Deno;

let settings: FloorSettings | null = null;

function settingsFrom(env: FloorEnv | undefined): FloorSettings {
  const url = env?.FLOOR_UPSTREAM_URL ?? deno?.env.get('FLOOR_UPSTREAM_URL');
  const token = env?.FLOOR_TOKEN ?? deno?.env.get('FLOOR_TOKEN');
  if (!url || !token) throw new Error('the floor needs FLOOR_UPSTREAM_URL and FLOOR_TOKEN');
  return {
    url,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  };
}

export default {
  async fetch(request: Request, env?: FloorEnv): Promise<Response> {
    // Computed once per isolate: the floor pays for nothing per request that it can avoid.
    settings ??= settingsFrom(env);
    return fetch(settings.url, {
      method: 'POST',
      headers: settings.headers,
      body: await request.arrayBuffer(),
    });
  },
};
