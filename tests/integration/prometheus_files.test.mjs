// The monitoring files that ship with sigstream (issue 15): the alert rules
// pass `promtool check rules`, the scrape example `promtool check config`,
// a live instance's /metrics passes `promtool check metrics` (the
// exposition conventions), and every metric and label value the rules and
// the Grafana dashboard query exists on a live instance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startCluster, connect, httpGet, REPO_ROOT } from '../lib/cluster.mjs';
import { parseMetrics } from '../lib/metrics.mjs';

const ALERTS = path.join(REPO_ROOT, 'deploy', 'prometheus', 'alerts.yml');
const SCRAPE = path.join(REPO_ROOT, 'deploy', 'prometheus', 'scrape.yml');
const DASHBOARD = path.join(REPO_ROOT, 'deploy', 'grafana', 'sigstream.json');

function promtool(args, input) {
  const run = spawnSync('promtool', args, { input, encoding: 'utf8' });
  if (run.error) throw new Error(`promtool: ${run.error.message} (scripts/dev install adds Debian's prometheus package)`);
  return run;
}

// Every instance series a PromQL expression names, with the label values
// it selects on (job and instance are Prometheus's own).
function selectors(expr) {
  const out = [];
  for (const m of expr.matchAll(/\b((?:sigstream|process)_[a-z_]+)(\{([^}]*)\})?/g)) {
    const labels = {};
    for (const l of (m[3] ?? '').matchAll(/([a-z_]+)\s*=\s*"([^"$]*)"/g)) {
      if (l[1] !== 'job' && l[1] !== 'instance') labels[l[1]] = l[2];
    }
    out.push({ name: m[1], labels });
  }
  return out;
}

const alertExprs = () => [...fs.readFileSync(ALERTS, 'utf8').matchAll(/^\s*expr:\s*(.+)$/gm)].map((m) => m[1]);
const dashboardExprs = () => JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')).panels.flatMap((p) => p.targets.map((t) => t.expr));

let cluster;
let metricsText;
before(async () => {
  // A fault flag that changes nothing in practice (a 3 ms delay every
  // millionth message), so that the one series shown only with such a flag
  // (an alert watches for it) is there too.
  cluster = await startCluster({ instances: 1, haproxy: false, env: { SIGSTREAM_FAULT_DELAY_LIVE_EVERY: '1000000' } });
  // Some traffic, so that the histograms and labelled counters have moved.
  const a = await connect(cluster.instance('i1').url);
  const b = await connect(cluster.instance('i1').url);
  const ja = await a.request({ type: 'join', room: 'prometheus-files' });
  await b.request({ type: 'join', room: 'prometheus-files' });
  assert.equal((await b.request({ type: 'signal', to: ja.peer, data: 'hello' })).type, 'ack');
  a.close(); b.close();
  metricsText = (await httpGet(`${cluster.instance('i1').httpUrl}/metrics`)).body;
});
after(async () => { await cluster?.stop({ failed: process.exitCode !== undefined && process.exitCode !== 0 }); });

test('promtool accepts the alert rules and the scrape example', () => {
  const rules = promtool(['check', 'rules', ALERTS]);
  assert.equal(rules.status, 0, rules.stdout + rules.stderr);
  assert.match(rules.stdout, /SUCCESS: (\d+) rules found/);
  assert.ok(Number(/SUCCESS: (\d+) rules found/.exec(rules.stdout)[1]) >= 10);
  const config = promtool(['check', 'config', SCRAPE]);
  assert.equal(config.status, 0, config.stdout + config.stderr);
});

test("an instance's /metrics passes promtool's exposition lint", () => {
  const lint = promtool(['check', 'metrics'], metricsText);
  assert.equal(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);
});

test('every metric and label value the alerts and the dashboard query exists on a live instance', () => {
  const samples = parseMetrics(metricsText);
  const exprs = [...alertExprs(), ...dashboardExprs()];
  assert.ok(exprs.length >= 20, `${exprs.length} expressions found`);
  let checked = 0;
  for (const expr of exprs) {
    for (const { name, labels } of selectors(expr)) {
      const found = samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      assert.ok(found, `${name}${JSON.stringify(labels)} (in \`${expr}\`) is not on a live instance's /metrics`);
      ++checked;
    }
  }
  assert.ok(checked >= 30, `${checked} series checked`);
});

test('the dashboard is importable: a title, a data source input, panels with PromQL targets', () => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  assert.equal(dashboard.title, 'sigstream');
  assert.ok(dashboard.templating.list.some((v) => v.type === 'datasource'));
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const panel of dashboard.panels) {
    assert.ok(panel.targets.length > 0, panel.title);
    assert.equal(panel.datasource.uid, '${datasource}', `${panel.title}: the data source picked on import`);
  }
});
