/** One entry of OpenAI's `GET /v1/models` list. */
export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/**
 * The models this gateway serves, in OpenAI's list shape: the configured Vertex models, then the
 * aliases clients may use instead. `owned_by` is the publisher part of a `publisher/model` name.
 */
export function modelList(
  models: readonly string[],
  aliases: ReadonlyMap<string, string>,
): ModelEntry[] {
  const entries = new Map<string, ModelEntry>();
  for (const id of models) entries.set(id, entry(id, id));
  for (const [alias, target] of aliases)
    if (!entries.has(alias)) entries.set(alias, entry(alias, target));
  return [...entries.values()];
}

function entry(id: string, servedBy: string): ModelEntry {
  const slash = servedBy.indexOf('/');
  return {
    id,
    object: 'model',
    created: 0,
    owned_by: slash > 0 ? servedBy.slice(0, slash) : 'vertex-ai',
  };
}
