// Deno Deploy starts its entrypoint the way `deno run` does, which only warns about a module's
// `export default { fetch }` and serves nothing. This entry serves the same gateway explicitly.
import gateway from '../src/runtime/deno.ts';

Deno.serve(gateway.fetch);
