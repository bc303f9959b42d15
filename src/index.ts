export {
  createGateway,
  type GatewayApp,
  type GatewayDependencies,
  LOCATION_HEADER,
} from './app.ts';
export { type Config, ConfigError, parseConfig } from './config.ts';
export { createEnvGateway } from './env-gateway.ts';
export { GatewayError } from './errors.ts';
