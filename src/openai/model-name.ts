/** What a model name may look like in configuration: `gemini-2.5-flash`, `google/gemini-2.5-pro`. */
export const MODEL_NAME = /^[A-Za-z0-9][\w.:@/-]{0,199}$/;

/** Vertex names Gemini models by publisher; OpenAI-style clients send the bare name. */
export function withPublisher(model: string): string {
  return model.startsWith('gemini-') ? `google/${model}` : model;
}
