import { createEnvGateway } from '../env-gateway.ts';

// One per isolate: the parsed config, the imported key and the token cache live here.
const gatewayFor = createEnvGateway();

export default {
  fetch(request: Request, env: Record<string, unknown>): Response | Promise<Response> {
    return gatewayFor(env)(request);
  },
} satisfies ExportedHandler<Record<string, unknown>>;
