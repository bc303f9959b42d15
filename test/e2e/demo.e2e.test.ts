import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, launch, ROOT, type RunningProcess, stopProcess } from './processes.ts';

// `npm start` exactly as the README tells a newcomer to run it, with no cloud account.

const devVars = join(ROOT, '.dev.vars');
const hasRealKey =
  existsSync(devVars) &&
  /^\s*GOOGLE_SERVICE_ACCOUNT_KEY\s*=\s*\S/m.test(readFileSync(devVars, 'utf8'));

describe.skipIf(hasRealKey)('npm start without a Google key', () => {
  let demo: RunningProcess;

  beforeAll(async () => {
    const port = await freePort();
    const { child, output } = await launch('npm', ['start'], /Ready on http:\/\/127\.0\.0\.1:\d+/, {
      PORT: String(port),
      EMULATOR_PORT: String(await freePort()),
    });
    demo = { url: `http://127.0.0.1:${port}`, output, stop: () => stopProcess(child) };
  });
  afterAll(async () => {
    await demo?.stop();
  });

  it('says it is a demo and how to switch to a real key', () => {
    expect(demo.output()).toContain('DEMO MODE');
    expect(demo.output()).toContain('local-dev-key');
    expect(demo.output()).toContain('.dev.vars');
  });

  it('answers the openai client, plain and streamed', async () => {
    const openai = new OpenAI({
      baseURL: `${demo.url}/v1`,
      apiKey: 'local-dev-key',
      maxRetries: 0,
    });
    const answer = await openai.chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'Why is the sky blue?' }],
    });
    expect(answer.choices[0]?.message.content).toContain('Why is the sky blue?');

    const stream = await openai.chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'Why is the sky blue?' }],
      stream: true,
    });
    let chunks = 0;
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) chunks++;
    expect(chunks).toBeGreaterThan(1);
  });

  it('refuses any other key', async () => {
    const openai = new OpenAI({ baseURL: `${demo.url}/v1`, apiKey: 'guess', maxRetries: 0 });
    const error = await openai.chat.completions
      .create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
