/**
 * Reads a V8 CPU profile the way one asks "where does the time per request go": busy time of the
 * JavaScript thread (everything but idle), split by function, as self time (the function's own
 * code) and as inclusive time (itself and everything it called), and grouped by area (the
 * gateway's own code, each library, the runtime).
 */
import type { CpuProfile, CpuProfileNode } from './inspector.ts';
import { ROOT } from './processes.ts';

export interface FunctionTime {
  name: string;
  area: string;
  /** Microseconds. */
  selfUs: number;
  inclusiveUs: number;
}

export interface ProfileSummary {
  wallUs: number;
  busyUs: number;
  functions: FunctionTime[];
  /** Self time by area, microseconds. */
  areas: Map<string, number>;
}

/**
 * Maps a line of an unminified esbuild bundle to the module it came from, using the
 * `// src/app.ts` comments esbuild puts before each module's code.
 */
export function bundleModules(source: string): (line: number) => string | null {
  const markers: { line: number; module: string }[] = [];
  source.split('\n').forEach((text, index) => {
    const module = /^\/\/ ((?:src|node_modules|bench)\/\S+)$/.exec(text)?.[1];
    if (module) markers.push({ line: index + 1, module });
  });
  return (line) => {
    let found: string | null = null;
    for (const marker of markers) {
      if (marker.line > line) break;
      found = marker.module;
    }
    return found;
  };
}

/** The file a frame's code is in, relative to the repository; npm packages as `npm:name/...`. */
function fileOf(node: CpuProfileNode, bundled: BundleInfo | undefined): string {
  const { url, lineNumber } = node.callFrame;
  let file = url.replace(/^file:\/\//, '');
  if (bundled && url.endsWith(bundled.moduleName)) file = bundled.moduleOf(lineNumber + 1) ?? file;
  const modules = file.lastIndexOf('node_modules/');
  if (modules >= 0) return `npm:${file.slice(modules + 'node_modules/'.length)}`;
  return file.replace(`${ROOT}/`, '');
}

function areaOf(name: string, file: string): string {
  if (file.startsWith('src/')) return 'gateway code (src/)';
  if (file.includes('floor-worker')) return 'floor code';
  const pkg = /^npm:((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
  if (pkg) return `npm ${pkg}`;
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'runtime, native (program)';
  return 'runtime built-ins (fetch, streams, HTTP, console, crypto, timers)';
}

export interface BundleInfo {
  moduleName: string;
  moduleOf(line: number): string | null;
}

const IDLE = '(idle)';

export function summarizeProfile(profile: CpuProfile, bundled?: BundleInfo): ProfileSummary {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const labels = new Map<number, { name: string; area: string }>();
  for (const node of profile.nodes) {
    const name = node.callFrame.functionName || '(anonymous)';
    const file = fileOf(node, bundled);
    labels.set(node.id, {
      name: file ? `${name} ${file}:${node.callFrame.lineNumber + 1}` : name,
      area: areaOf(name, file),
    });
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areaOfName = new Map<string, string>();
  const areas = new Map<string, number>();
  let wallUs = 0;
  let busyUs = 0;
  // A sample stands for the time until the next one.
  for (let i = 0; i < profile.samples.length; i++) {
    const duration = profile.timeDeltas[i + 1] ?? 0;
    const leafId = profile.samples[i] as number;
    const leaf = labels.get(leafId);
    if (!leaf) continue;
    wallUs += duration;
    if (leaf.name === IDLE) continue;
    busyUs += duration;
    self.set(leaf.name, (self.get(leaf.name) ?? 0) + duration);
    areas.set(leaf.area, (areas.get(leaf.area) ?? 0) + duration);
    const seen = new Set<string>();
    for (let id: number | undefined = leafId; id !== undefined; id = parent.get(id)) {
      const label = labels.get(id);
      if (!label || seen.has(label.name)) continue;
      seen.add(label.name);
      areaOfName.set(label.name, label.area);
      inclusive.set(label.name, (inclusive.get(label.name) ?? 0) + duration);
    }
  }
  const functions = [...inclusive.keys()].map((name) => ({
    name,
    area: areaOfName.get(name) ?? '',
    selfUs: self.get(name) ?? 0,
    inclusiveUs: inclusive.get(name) ?? 0,
  }));
  return { wallUs, busyUs, functions, areas };
}
