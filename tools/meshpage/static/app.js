// The mesh page: polls /api/graph and redraws the service graph in place with cytoscape.js.
// The graph is also written out as HTML (the services list and the traffic table), which is
// what a screen reader (and the browser test) reads.
"use strict";

const state = { cy: null, refreshMs: 5000, selected: null, layoutKey: "" };

const fmt = (v, digits = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const pct = (v) => `${fmt(100 * v, 1)}%`;

function edgeLabel(e) {
  return `${fmt(e.rps)} rps · ${fmt(e.percent, 0)}%${e.mtls ? " · mTLS" : ""}`;
}

function elements(graph) {
  const nodes = graph.nodes.map((n) => ({
    group: "nodes",
    data: { ...n, parent: n.parent || undefined, idle: n.kind === "workload" && !n.rps_in && !n.rps_out },
  }));
  const edges = graph.edges.map((e) => ({
    group: "edges",
    data: { ...e, label: edgeLabel(e), width: 1.5 + Math.min(6, Math.log2(1 + 4 * e.rps)) },
  }));
  return nodes.concat(edges);
}

function makeGraph() {
  return cytoscape({
    container: document.getElementById("graph"),
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "background-color": "#2b7bb9", width: 26, height: 26 } },
      { selector: "node[kind = 'app']", style: { "background-color": "#eef3f8", "border-color": "#9fb3c8", "border-width": 1,
          shape: "round-rectangle", "text-valign": "top", "font-weight": "bold", padding: 12 } },
      { selector: "node[?idle]", style: { "background-color": "#b9c4d0" } },
      { selector: "node[error_rate > 0]", style: { "background-color": "#d33" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#f0a030" } },
      { selector: "edge", style: { width: "data(width)", "curve-style": "bezier", "target-arrow-shape": "triangle",
          "line-color": "#2b7bb9", "target-arrow-color": "#2b7bb9", label: "data(label)", "font-size": 9,
          "text-background-color": "#fff", "text-background-opacity": 0.85, "text-background-padding": 2 } },
      { selector: "edge[!mtls]", style: { "line-style": "dashed", "line-color": "#7a8794", "target-arrow-color": "#7a8794" } },
      { selector: "edge[error_rate > 0]", style: { "line-color": "#d33", "target-arrow-color": "#d33" } },
    ],
  });
}

// Left to right in call order: each app one column further than its farthest caller, its
// versions stacked inside its box. Deterministic, so a redraw never reshuffles the page.
function positions(graph) {
  const workloads = graph.nodes.filter((n) => n.kind === "workload");
  const appOf = new Map(workloads.map((n) => [n.id, n.app]));
  const apps = [...new Set(workloads.map((n) => n.app))].sort();
  const depth = new Map(apps.map((a) => [a, 0]));
  const calls = graph.edges.map((e) => [appOf.get(e.source), appOf.get(e.target)]).filter(([a, b]) => a && b && a !== b);
  for (let round = 0; round < apps.length; round++) {
    for (const [a, b] of calls) {
      if (depth.get(b) < depth.get(a) + 1 && depth.get(a) + 1 < apps.length) depth.set(b, depth.get(a) + 1);
    }
  }
  const called = new Set(calls.map(([, b]) => b));
  const place = new Map();
  const columns = new Map();
  for (const app of apps) {
    // An app nobody calls and that calls nobody (idle) goes last, out of the flow's way.
    const d = calls.some(([a, b]) => a === app || b === app) || called.has(app) ? depth.get(app) : Math.max(0, ...depth.values()) + 1;
    if (!columns.has(d)) columns.set(d, []);
    columns.get(d).push(app);
  }
  for (const [d, column] of columns) {
    let y = 0;
    for (const app of column) {
      const versions = workloads.filter((n) => n.app === app).sort((a, b) => a.version.localeCompare(b.version));
      versions.forEach((n, i) => place.set(n.id, { x: 60 + 240 * d, y: y + 85 * i }));
      y += 85 * versions.length + 60;
    }
    // Centre each column on the same middle line.
    for (const app of column) {
      for (const n of workloads.filter((w) => w.app === app)) place.get(n.id).y -= (y - 60) / 2;
    }
  }
  return place;
}

function layout(cy, graph) {
  const place = positions(graph);
  cy.layout({ name: "preset", positions: (node) => place.get(node.id()) || { x: 0, y: 0 },
    fit: true, padding: 30, animate: false }).run();
}

function update(graph) {
  const cy = state.cy;
  const wanted = new Map(elements(graph).map((el) => [el.data.id, el]));
  cy.batch(() => {
    cy.elements().forEach((el) => { if (!wanted.has(el.id())) el.remove(); });
    for (const [id, el] of wanted) {
      const existing = cy.getElementById(id);
      if (existing.nonempty()) existing.data(el.data);
      else cy.add(el);
    }
  });
  // Lay out again only when the set of nodes or edges changed; rates alone keep positions.
  const key = [...wanted.keys()].sort().join("|");
  if (key !== state.layoutKey) { state.layoutKey = key; layout(cy, graph); }
}

function renderTables(graph) {
  const list = document.getElementById("nodes");
  list.replaceChildren(...graph.nodes.filter((n) => n.kind === "workload").map((n) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = n.version ? `${n.app} ${n.version}` : n.app;
    button.dataset.node = n.id;
    button.dataset.app = n.app;
    button.dataset.rpsIn = n.rps_in;
    if (!n.rps_in && !n.rps_out) button.classList.add("idle");
    button.addEventListener("click", () => select(n.app));
    li.append(button);
    return li;
  }));
  const body = document.querySelector("#edges tbody");
  body.replaceChildren(...graph.edges.map((e) => {
    const tr = document.createElement("tr");
    Object.assign(tr.dataset, { source: e.source, target: e.target, rps: e.rps, percent: e.percent,
      errorRate: e.error_rate, mtls: e.mtls });
    const cells = [e.source, e.target, fmt(e.rps), `${fmt(e.percent, 1)}%`, pct(e.error_rate),
      e.p50_ms === null ? "–" : `${fmt(e.p50_ms, 1)} ms`, e.p99_ms === null ? "–" : `${fmt(e.p99_ms, 1)} ms`,
      e.mtls ? "yes" : "no"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i >= 2 && i <= 6) td.className = "num";
      tr.append(td);
    });
    return tr;
  }));
  document.getElementById("window").textContent = `(rates over the last ${graph.window})`;
}

function showErrors(errors) {
  const box = document.getElementById("errors");
  box.hidden = !errors.length;
  box.textContent = errors.join(" · ");
}

async function refresh() {
  try {
    const response = await fetch("/api/graph");
    const graph = await response.json();
    state.refreshMs = 1000 * (graph.refresh_seconds || 5);
    update(graph);
    renderTables(graph);
    showErrors(graph.errors || []);
    document.getElementById("status").textContent =
      `${graph.edges.length} edges · updated ${new Date(graph.generated_at).toLocaleTimeString()}`;
    document.body.dataset.updated = graph.generated_at;
    document.body.dataset.edges = graph.edges.length;
  } catch (error) {
    showErrors([`the mesh page's server did not answer: ${error}`]);
  }
  setTimeout(refresh, state.refreshMs);
}

function element(tag, text, className) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

async function select(app) {
  state.selected = app;
  state.cy.nodes().unselect();
  state.cy.nodes(`[app = "${app}"]`).select();
  const panel = document.getElementById("details");
  panel.replaceChildren(element("h2", app), element("p", "loading…", "hint"));
  const info = await (await fetch(`/api/apps/${encodeURIComponent(app)}`)).json();
  if (state.selected !== app) return;
  const parts = [element("h2", app)];
  parts.push(element("h3", "Routes"));
  if (!info.routing.length) parts.push(element("p", "No VirtualService or DestinationRule: default routing (every version).", "hint"));
  for (const r of info.routing) {
    const section = element("div", undefined, "route");
    section.dataset.kind = r.kind;
    section.dataset.name = r.name;
    section.append(element("h4", `${r.kind} ${r.namespace}/${r.name}`), element("pre", JSON.stringify(r.spec, null, 2)));
    parts.push(section);
  }
  parts.push(element("h3", "Recent traces"));
  if (!info.traces.length) parts.push(element("p", "No traces yet.", "hint"));
  for (const t of info.traces) {
    const row = element("div", `${new Date(t.start / 1000).toLocaleTimeString()} · ${t.root} · ${t.spans} spans · ${fmt(t.duration_ms, 1)} ms · ${t.services.join(", ")}`, "trace");
    row.dataset.traceId = t.traceId;
    row.dataset.services = t.services.join(",");
    row.addEventListener("click", () => showTrace(row, t.traceId));
    parts.push(row);
  }
  for (const e of info.errors) parts.push(element("p", e, "hint"));
  panel.replaceChildren(...parts);
  panel.dataset.app = app;
}

async function showTrace(row, traceId) {
  const { spans } = await (await fetch(`/api/traces/${traceId}`)).json();
  const start = Math.min(...spans.map((s) => s.timestamp || 0));
  const list = element("div", undefined, "spans");
  for (const s of spans) {
    const offset = ((s.timestamp || 0) - start) / 1000;
    const service = (s.localEndpoint || {}).serviceName || "?";
    list.append(element("div", `+${fmt(offset, 1)} ms ${fmt((s.duration || 0) / 1000, 1)} ms  ${service}  ${s.kind || ""}  ${s.name || ""}`, "span"));
  }
  row.after(list);
}

state.cy = makeGraph();
state.cy.on("tap", "node", (event) => select(event.target.data("app")));
window.meshGraph = state.cy;
refresh();
