// A user's own Hono app that mounts the gateway, importing it by package name as a dependent
// would. Run by library.e2e.test.ts with KEY_JSON and EMULATOR_URL set, after `npm run build`.
import { Hono } from 'hono';
import { createGateway, type GatewayApp, parseConfig } from 'vertex-edge-gateway';

const app = new Hono();
app.get('/', (c) => c.text('my own app'));
const gateway: GatewayApp = createGateway(
  parseConfig({
    GOOGLE_SERVICE_ACCOUNT_KEY: process.env.KEY_JSON,
    GATEWAY_API_KEYS: 'library-key',
    VERTEX_BASE_URL: process.env.EMULATOR_URL,
  }),
);
app.route('/ai', gateway);

const chat = await app.request('/ai/v1/chat/completions', {
  method: 'POST',
  headers: { authorization: 'Bearer library-key', 'content-type': 'application/json' },
  body: JSON.stringify({
    model: 'gemini-2.5-flash',
    messages: [{ role: 'user', content: 'Hello from a host app' }],
  }),
});
const refused = await app.request('/ai/v1/chat/completions', { method: 'POST' });
console.log(
  JSON.stringify({
    home: await (await app.request('/')).text(),
    status: chat.status,
    requestId: chat.headers.get('x-request-id'),
    answer: ((await chat.json()) as { choices: { message: { content: string } }[] }).choices[0]
      ?.message.content,
    refused: refused.status,
  }),
);
