import { createEnvGateway } from '../env-gateway.ts';

// Deno hands `deno serve` handlers ServeHandlerInfo, not an env: read the environment once here
// and give the gateway the same shape of configuration Workers gets.
const handler = createEnvGateway()(Deno.env.toObject());

const server: Deno.ServeDefaultExport = {
  fetch(request: Request): Response | Promise<Response> {
    return handler(request);
  },
};

export default server;
