// Reading an instance's /metrics (the Prometheus text format).
import { httpGet } from './cluster.mjs';

/** Every sample of `text`: [{name, labels: {k: v}, value}]. Comments skipped. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/**
 * The sum of the samples named `name` whose labels include `labels`
 * (all of a family by default); NaN when there is none.
 */
export function metricValue(text, name, labels = {}) {
  const matching = parseMetrics(text).filter((s) => s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matching.length === 0 ? NaN : matching.reduce((sum, s) => sum + s.value, 0);
}

/** `sigstream_${name}` on the instance at `httpUrl` (see metricValue); throws when absent. */
export async function instanceMetric(httpUrl, name, labels = {}) {
  const res = await httpGet(`${httpUrl}/metrics`, { timeoutMs: 5000 });
  if (res.status !== 200) throw new Error(`${httpUrl}/metrics: HTTP ${res.status}`);
  const value = metricValue(res.body, `sigstream_${name}`, labels);
  if (Number.isNaN(value)) throw new Error(`no metric sigstream_${name} ${JSON.stringify(labels)} at ${httpUrl}`);
  return value;
}
