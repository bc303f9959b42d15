import { ChatOpenAI } from '@langchain/openai';

const model = new ChatOpenAI({
  model: 'gemini-2.5-flash',
  apiKey: process.env.GATEWAY_API_KEY ?? 'local-dev-key',
  configuration: { baseURL: `${process.env.GATEWAY_URL ?? 'http://127.0.0.1:8787'}/v1` },
});

const answer = await model.invoke('What is a vector database?');
console.log(answer.content);

for await (const chunk of await model.stream('Write a limerick about a gateway.')) {
  process.stdout.write(chunk.content);
}
process.stdout.write('\n');
