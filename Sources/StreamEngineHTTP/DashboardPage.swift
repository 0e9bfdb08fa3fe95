/// The live dashboard served at `/`: one self-contained page (no CDN, no
/// external script). It draws the topology from the Mermaid text of
/// `stream-engine describe` (`/topology`): each pipeline a lane of its steps,
/// with source topics before, stores below and output topics after; and it
/// polls `/metrics` every second for per-pipeline rates in and out, totals,
/// dead-letter counts and consumer lag, `/ready` and `/instances`.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>StreamEngine dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#0f1419; --card:#18202a; --line:#2c3a48; --text:#e6edf3; --dim:#8b98a5; --topic:#1f6feb; --store:#8957e5; --redis:#d1242f; --ok:#3fb950; --warn:#d29922; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; gap:24px; align-items:baseline; padding:14px 20px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:18px; margin:0; }
  .pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; border:1px solid var(--line); }
  .ready { background:#12361f; border-color:var(--ok); } .notready { background:#3a2a0b; border-color:var(--warn); }
  .totals { display:flex; gap:18px; color:var(--dim); }
  .totals b { color:var(--text); font-variant-numeric:tabular-nums; }
  main { padding:16px 20px; display:grid; gap:14px; }
  .pipeline { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
  .phead { display:flex; gap:18px; align-items:baseline; flex-wrap:wrap; margin-bottom:8px; }
  .phead h2 { font-size:15px; margin:0; min-width:180px; }
  .stat { color:var(--dim); font-size:12px; } .stat b { color:var(--text); font-size:14px; font-variant-numeric:tabular-nums; }
  .stat.dlq b.nonzero { color:#ff7b72; } .stat.lag b.nonzero { color:var(--warn); }
  .lane { display:flex; align-items:flex-start; gap:0; overflow-x:auto; padding-bottom:4px; }
  .col { display:flex; flex-direction:column; gap:6px; align-items:stretch; }
  .node { border:1px solid var(--line); border-radius:6px; padding:4px 8px; font-size:12px; max-width:230px; background:#1e2835; white-space:normal; overflow-wrap:anywhere; }
  .node.topic { border-color:var(--topic); border-radius:14px; background:#10233f; }
  .node.store { border-color:var(--store); background:#21183a; font-size:11px; }
  .node.redis { border-color:var(--redis); background:#3a1518; }
  .node.internal { border-style:dashed; }
  .arrow { color:var(--dim); padding:6px 6px 0; font-size:16px; }
  details { color:var(--dim); } pre { white-space:pre-wrap; font-size:11px; }
  footer { padding:8px 20px; color:var(--dim); font-size:12px; }
</style>
</head>
<body>
<header>
  <h1 id="app">StreamEngine</h1>
  <span id="ready" class="pill">…</span>
  <div class="totals">
    <span>in <b id="total-in">0</b>/s</span>
    <span>processed <b id="total-processed">0</b></span>
    <span>dead-lettered <b id="total-dlq">0</b></span>
    <span>lag <b id="total-lag">0</b></span>
    <span>instances <b id="instances">0</b></span>
  </div>
</header>
<main id="pipelines"><p>loading the topology…</p></main>
<footer><span id="updated">not updated yet</span>
  <details><summary>Mermaid source (stream-engine describe --format mermaid)</summary><pre id="mermaid"></pre></details>
</footer>
<script>
"use strict";
// --- Mermaid flowchart (the subset TopologyDescriber writes) -> nodes, subgraphs, edges.
function parseMermaid(text) {
  const nodes = {}, subgraphs = [], edges = [];
  let current = null;
  const unq = s => s.replace(/^"|"$/g, "").replace(/#quot;/g, '"').replace(/<br\/>/g, " · ");
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    let m;
    if (!line || line.startsWith("flowchart") || line.startsWith("direction")) continue;
    if ((m = line.match(/^subgraph\s+(\S+)\["(.*)"\]$/))) { current = { id: m[1], label: unq(m[2]), nodes: [] }; subgraphs.push(current); continue; }
    if (line === "end") { current = null; continue; }
    if ((m = line.match(/^(\S+)\s+(-->|-\.-|-\.->|-\.\s.*\s\.->)\s+(\S+)$/))) { edges.push({ from: m[1], to: m[3], kind: m[2] }); continue; }
    if ((m = line.match(/^(\S+?)(\(\[|\[\(|\{\{|\[)"(.*)"(\]\)|\)\]|\}\}|\])$/))) {
      const kind = m[2] === "([" ? "topic" : m[2] === "[(" ? "store" : m[2] === "{{" ? "redis" : "step";
      nodes[m[1]] = { id: m[1], kind, label: unq(m[3]) };
      if (current) current.nodes.push(m[1]);
    }
  }
  return { nodes, subgraphs, edges };
}

const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
let topology = null, graph = null, previous = null;

function renderTopology() {
  const main = document.getElementById("pipelines");
  main.textContent = "";
  for (const p of topology.pipelines) {
    const sg = graph.subgraphs.find(s => s.label === "pipeline " + p.name);
    const card = el("section", "pipeline"); card.dataset.pipeline = p.name;
    const head = el("div", "phead");
    head.append(el("h2", null, p.name));
    for (const [cls, label] of [["rate-in", "in/s"], ["rate-out", "out/s"], ["processed", "processed"], ["dlq", "dead-lettered"], ["lag", "lag"]]) {
      const s = el("span", "stat " + cls); const b = el("b", null, "0"); b.className = "v"; s.append(b, " " + label); head.append(s);
    }
    card.append(head);
    const lane = el("div", "lane");
    const steps = sg ? sg.nodes.filter(id => graph.nodes[id].kind === "step" || graph.nodes[id].kind === "redis") : [];
    const inSg = new Set(sg ? sg.nodes : []);
    const sources = el("div", "col");
    for (const t of p.sources) sources.append(el("div", "node topic", t));
    lane.append(sources);
    for (const id of steps) {
      lane.append(el("div", "arrow", "→"));
      const col = el("div", "col");
      const n = graph.nodes[id];
      col.append(el("div", "node " + (n.kind === "redis" ? "redis" : ""), n.label));
      for (const e of graph.edges) {
        if (e.from !== id) continue;
        const t = graph.nodes[e.to];
        if (!t) continue;
        if (t.kind === "store") col.append(el("div", "node store", "store " + t.label));
        else if (t.kind === "topic" && e.kind === "-->") col.append(el("div", "node topic internal", "→ " + t.label));
      }
      lane.append(col);
    }
    card.append(lane);
    main.append(card);
  }
  document.getElementById("mermaid").textContent = topology.mermaid;
  document.getElementById("app").textContent = "StreamEngine · " + topology.applicationId;
}

// --- Prometheus text -> [{name, labels, value}]
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function sumBy(metrics, name, pipeline) {
  return metrics.filter(x => x.name === name && (pipeline === undefined || x.labels.pipeline === pipeline)).reduce((a, x) => a + x.value, 0);
}

async function refresh() {
  try {
    const [mt, rd, inst] = await Promise.all([
      fetch("/metrics").then(r => r.text()),
      fetch("/ready").then(r => r.json()),
      fetch("/instances").then(r => r.json()).catch(() => ({ instances: [] })),
    ]);
    const metrics = parseMetrics(mt);
    const now = performance.now();
    const lagByTopic = {};
    for (const x of metrics) if (x.name === "stream_engine_consumer_lag") lagByTopic[x.labels.topic] = (lagByTopic[x.labels.topic] || 0) + x.value;
    let totalIn = 0, totalLag = 0;
    const snapshot = {};
    for (const p of topology.pipelines) {
      const processed = sumBy(metrics, "stream_engine_records_processed", p.name);
      const out = sumBy(metrics, "stream_engine_records_out", p.name);
      const dlq = sumBy(metrics, "stream_engine_records_dead_lettered", p.name);
      const lag = p.sources.concat(p.repartition ? [p.repartition] : []).reduce((a, t) => a + (lagByTopic[t] || 0), 0);
      snapshot[p.name] = { processed, out };
      const prev = previous && previous.values[p.name];
      const dt = previous ? (now - previous.at) / 1000 : 0;
      const rin = prev && dt > 0 ? Math.max(0, (processed - prev.processed) / dt) : 0;
      const rout = prev && dt > 0 ? Math.max(0, (out - prev.out) / dt) : 0;
      totalIn += rin; totalLag += lag;
      const card = document.querySelector('[data-pipeline="' + p.name + '"]');
      if (!card) continue;
      const set = (cls, v) => { const b = card.querySelector("." + cls + " b"); b.textContent = v; b.classList.toggle("nonzero", Number(String(v).replace(/,/g, "")) > 0); };
      set("rate-in", Math.round(rin).toLocaleString("en-US"));
      set("rate-out", Math.round(rout).toLocaleString("en-US"));
      set("processed", processed.toLocaleString("en-US"));
      set("dlq", dlq.toLocaleString("en-US"));
      set("lag", lag.toLocaleString("en-US"));
    }
    previous = { at: now, values: snapshot };
    document.getElementById("total-in").textContent = Math.round(totalIn).toLocaleString("en-US");
    document.getElementById("total-processed").textContent = sumBy(metrics, "stream_engine_records_processed").toLocaleString("en-US");
    document.getElementById("total-dlq").textContent = sumBy(metrics, "stream_engine_records_dead_lettered").toLocaleString("en-US");
    document.getElementById("total-lag").textContent = totalLag.toLocaleString("en-US");
    document.getElementById("instances").textContent = String((inst.instances || []).length);
    const r = document.getElementById("ready");
    r.textContent = rd.ready ? "ready" : "not ready: " + (rd.detail || "restoring");
    r.className = "pill " + (rd.ready ? "ready" : "notready");
    const u = document.getElementById("updated");
    u.dataset.updates = String(Number(u.dataset.updates || 0) + 1);
    u.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC (every second)";
  } catch (e) {
    document.getElementById("updated").textContent = "update failed: " + e;
  }
}

async function start() {
  topology = await fetch("/topology").then(r => r.json());
  graph = parseMermaid(topology.mermaid);
  renderTopology();
  await refresh();
  setInterval(refresh, 1000);
}
start();
</script>
</body>
</html>
"""#
}
