/** What a model name may look like in configuration: `gemini-2.5-flash`, `google/gemini-2.5-pro`. */
export const MODEL_NAME = /^[A-Za-z0-9][\w.:@/-]{0,199}$/;

// A bare name or `publisher/name`, each part starting with a letter or digit.
const PLAIN_MODEL_NAME = /^[A-Za-z0-9][\w.:@-]{0,99}(?:\/[A-Za-z0-9][\w.:@-]{0,99})?$/;

/** A model name a key's policy can vouch for: one or two plain parts, and no `..` anywhere. */
export function isPlainModelName(model: string): boolean {
  return PLAIN_MODEL_NAME.test(model) && !model.includes('..');
}

/** Vertex names Gemini models by publisher; OpenAI-style clients send the bare name. */
export function withPublisher(model: string): string {
  return model.startsWith('gemini-') ? `google/${model}` : model;
}
