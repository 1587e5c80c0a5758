// scaleguard dashboard: fetches /api/v1 and draws with the bundled plotly.js; polls to refresh.
// Every value from the API reaches the page through textContent or Plotly, never as HTML.
"use strict";

const body = document.body;
const PAGE = body.dataset.page;
const KEY = body.dataset.key;
const REFRESH_MS = 1000 * Number(body.dataset.refresh || 5);
const TOKEN_KEY = "scaleguard-token";
const SPARK_POINTS = 60;       // a sparkline is ~160px wide
const SPARK_MAX_RUNS = 50;     // sparklines for the newest runs only: one request each
const CHART_POINTS = 2000;     // the API's default; zooming asks again for the visible range
const PREFERRED = ["loss", "train/loss", "train_loss", "val_loss", "eval/loss"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function setStatus(text, error = false) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.classList.toggle("error", error);
}

class Unauthorized extends Error {}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch("/api/v1" + path, { headers });
  if (response.status === 401) throw new Unauthorized("a token is needed to read");
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

function num(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;  // "nan", "inf": findings, shown as they are
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

function count(v) { return typeof v === "number" ? Math.round(v).toLocaleString("en-US") : num(v); }

function asNumber(v) { return typeof v === "string" ? Number(v) : v; }

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

function badge(text, kind) { return el("span", { class: "badge " + (kind || text), text }); }

function pickMetric(names) {
  for (const p of PREFERRED) if (names.includes(p)) return p;
  return names[0];
}

function main() { return document.getElementById("main"); }

function section(id, title) {
  let node = document.getElementById(id);
  if (!node) {
    node = el("section", { id });
    if (title) node.append(el("h2", { text: title }));
    node.append(el("div", { class: "content" }));
    main().append(node);
  }
  return node.querySelector(".content");
}

// ---- runs: the list with latest values and sparklines -------------------------------------
async function drawRuns() {
  const runs = await api("/runs");
  const box = section("runs", "");
  if (!runs.length) { box.replaceChildren(el("p", { class: "empty", text: "No runs yet." })); return; }
  const table = el("table", { id: "runs-table" },
    el("thead", {}, el("tr", {}, ...["run", "status", "points", "started", "alerts", "latest", "trend"]
      .map((h) => el("th", { text: h })))));
  const tbody = el("tbody");
  const sparks = [];
  runs.forEach((run, i) => {
    const names = Object.keys(run.latest);
    const latest = el("span", { class: "latest" });
    names.slice(0, 6).forEach((n) => {
      latest.append(n + "=", el("b", { text: num(run.latest[n].value) }), " ");
    });
    const alerts = el("span");
    for (const sev of ["critical", "warning", "info"]) {
      if (run.alerts[sev]) alerts.append(badge(sev + " " + run.alerts[sev], sev));
    }
    const spark = el("div", { class: "spark" });
    const link = el("a", { href: "/runs/" + encodeURIComponent(run.run_id), class: "run-link",
                           text: run.name });
    tbody.append(el("tr", {}, el("td", {}, link), el("td", {}, badge(run.status)),
      el("td", { class: "num", text: run.points }), el("td", { text: when(run.started_at) }),
      el("td", {}, alerts), el("td", {}, latest), el("td", {}, spark)));
    if (names.length && i < SPARK_MAX_RUNS) sparks.push([spark, run.run_id, pickMetric(names)]);
  });
  table.append(tbody);
  box.replaceChildren(table);
  await Promise.all(sparks.map(([node, id, metric]) => drawSpark(node, id, metric)));
}

async function drawSpark(node, runId, metric) {
  const s = await api(`/runs/${encodeURIComponent(runId)}/series?metric=${encodeURIComponent(metric)}&max_points=${SPARK_POINTS}`);
  Plotly.newPlot(node, [{ x: s.steps, y: s.values.map(asNumber), mode: "lines", hoverinfo: "skip",
                          line: { width: 1.5, color: "#2b6cb0" } }],
    { margin: { l: 0, r: 0, t: 0, b: 0 }, xaxis: { visible: false }, yaxis: { visible: false },
      showlegend: false, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)" },
    { staticPlot: true, displayModeBar: false });
  node.title = metric;
}

// ---- one run: a chart per metric, detector events and alerts marked, zoom refetches --------
const zoomed = {};  // metric -> [start, end] while the viewer is zoomed in

function chartId(metric) { return "chart-" + metric.replace(/[^A-Za-z0-9_-]/g, "_"); }

function markers(metric, findings) {
  const mine = findings.filter((f) => f.metric === metric && f.step !== null && f.step !== undefined);
  return {
    x: mine.map((f) => f.step), y: mine.map((f) => asNumber(f.value)),
    text: mine.map((f) => `${f.severity}: ${f.title}${f.message ? " — " + f.message : ""}`),
    mode: "markers", name: "events", hoverinfo: "text",
    marker: { color: mine.map((f) => (f.severity === "critical" ? "#c53030" : f.severity === "warning" ? "#dd6b20" : "#3182ce")),
              size: 10, symbol: "x" },
  };
}

function findingsOf(alerts, events) {
  // Alerts carry metric/step/value; detector events keep theirs in the payload.
  const out = alerts.map((a) => ({ metric: a.metric, step: a.step, value: a.value, severity: a.severity,
                                   title: a.title, message: a.message }));
  for (const e of events) {
    const p = e.payload || {};
    if (!p.metric) continue;
    out.push({ metric: p.metric, step: e.step ?? p.step, value: p.value, severity: p.severity || "info",
               title: p.kind || e.kind, message: p.message || "" });
  }
  return out;
}

async function drawChart(runId, metric, findings) {
  const range = zoomed[metric];
  let q = `/runs/${encodeURIComponent(runId)}/series?metric=${encodeURIComponent(metric)}&max_points=${CHART_POINTS}`;
  if (range) q += `&start=${Math.floor(range[0])}&end=${Math.ceil(range[1])}`;
  const s = await api(q);
  let node = document.getElementById(chartId(metric));
  if (!node) {
    node = el("div", { id: chartId(metric), class: "chart", "data-metric": metric });
    section("charts", "Metrics").append(node);
  }
  node.parentElement.classList.add("charts");
  const shown = s.steps.length < s.raw_points ? ` (${s.steps.length} of ${s.raw_points} points)` : "";
  const layout = {
    title: { text: metric + shown, font: { size: 13 } }, margin: { l: 55, r: 15, t: 35, b: 35 },
    xaxis: { title: { text: "step" } }, showlegend: false, uirevision: metric,
  };
  if (range) { layout.xaxis.range = range; layout.xaxis.autorange = false; }
  const traces = [{ x: s.steps, y: s.values.map(asNumber), mode: "lines", name: metric,
                    line: { width: 1.5, color: "#2b6cb0" } }, markers(metric, findings)];
  await Plotly.react(node, traces, layout, { responsive: true, displaylogo: false });
  if (!node.dataset.bound) {
    node.dataset.bound = "1";
    node.on("plotly_relayout", (ev) => {
      if (ev["xaxis.autorange"]) delete zoomed[metric];
      else if (ev["xaxis.range[0]"] !== undefined) zoomed[metric] = [ev["xaxis.range[0]"], ev["xaxis.range[1]"]];
      else if (Array.isArray(ev["xaxis.range"])) zoomed[metric] = ev["xaxis.range"].slice();
      else return;
      drawChart(runId, metric, findings).catch(report);
    });
  }
}

async function drawRun() {
  const run = await api(`/runs/${encodeURIComponent(KEY)}`);
  const [metrics, alerts, events] = await Promise.all([
    api(`/runs/${encodeURIComponent(run.run_id)}/metrics`),
    api(`/alerts?run=${encodeURIComponent(run.run_id)}`),
    api(`/runs/${encodeURIComponent(run.run_id)}/events`),
  ]);
  main().querySelector("h1").textContent = "Run " + run.name;
  const meta = section("meta", "");
  meta.replaceChildren(el("div", { class: "meta" }, badge(run.status), ` id ${run.run_id} · ${run.points} points · started ${when(run.started_at)}`
    + (run.finished_at ? ` · finished ${when(run.finished_at)}` : "")));
  if (Object.keys(run.config || {}).length) meta.append(el("pre", { text: JSON.stringify(run.config, null, 2) }));
  drawAlertTable(section("run-alerts", "Alerts"), alerts, false);
  const findings = findingsOf(alerts, events);
  // Loss first, then the rest by name; boxes made up front so that the order is stable.
  const ordered = [...PREFERRED.filter((m) => metrics.includes(m)), ...metrics.filter((m) => !PREFERRED.includes(m))];
  for (const m of ordered) {
    if (!document.getElementById(chartId(m))) {
      section("charts", "Metrics").append(el("div", { id: chartId(m), class: "chart", "data-metric": m }));
    }
  }
  await Promise.all(ordered.map((m) => drawChart(run.run_id, m, findings)));
}

// ---- alerts -------------------------------------------------------------------------------
function drawAlertTable(box, alerts, withRun) {
  if (!alerts.length) { box.replaceChildren(el("p", { class: "empty", text: "No alerts." })); return; }
  const heads = ["severity", ...(withRun ? ["run"] : []), "alert", "metric", "step", "value", "action", "time"];
  const tbody = el("tbody");
  for (const a of alerts) {
    const cells = [el("td", {}, badge(a.severity))];
    if (withRun) cells.push(el("td", {}, el("a", { href: "/runs/" + encodeURIComponent(a.run), text: a.run_name })));
    cells.push(el("td", {}, el("b", { text: a.title }), a.message ? " — " + a.message : ""),
      el("td", { text: a.metric }), el("td", { class: "num", text: a.step ?? "" }),
      el("td", { class: "num", text: num(a.value) }), el("td", { text: a.action }),
      el("td", { text: when(a.time) }));
    tbody.append(el("tr", { class: "alert-row " + a.severity }, ...cells));
  }
  box.replaceChildren(el("table", { class: "alerts" },
    el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { text: h })))), tbody));
}

async function drawAlerts() {
  drawAlertTable(section("alerts", ""), await api("/alerts"), true);
}

// ---- rollouts: stage, traffic, gate evidence and decision history ------------------------
function pct(v) {
  if (v === null || v === undefined) return "";
  const t = (100 * v).toPrecision(3);  // "100", "5.00", "0.500": trim zeros after a point only
  return (t.includes(".") ? t.replace(/0+$/, "").replace(/\.$/, "") : t) + "%";
}

function table(id, heads, rowsOfCells) {
  const tbody = el("tbody");
  for (const cells of rowsOfCells) tbody.append(el("tr", {}, ...cells.map((c) => (c instanceof Node && c.tagName === "TD") ? c : el("td", {}, c))));
  return el("table", { id }, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { text: h })))), tbody);
}

async function drawRollouts() {
  const rollouts = await api("/rollouts");
  const box = section("rollouts", "");
  if (!rollouts.length) { box.replaceChildren(el("p", { class: "empty", text: "No rollouts yet." })); return; }
  box.replaceChildren(table("rollouts-table",
    ["rollout", "plan", "stage", "traffic", "status", "last decision", "decisions", "updated"],
    rollouts.map((r) => [
      el("a", { href: "/rollouts/" + encodeURIComponent(r.rollout_id), class: "rollout-link", text: r.rollout_id }),
      r.plan, `${r.stage} (${r.stage_index + 1} of ${r.stages.length})`, pct(r.traffic),
      badge(r.status), r.last_action ? badge(r.last_action) : "", String(r.decisions), when(r.updated_at),
    ])));
}

async function drawRollout() {
  const [r, audit] = await Promise.all([api(`/rollouts/${encodeURIComponent(KEY)}`),
                                         api(`/rollouts/${encodeURIComponent(KEY)}/audit`)]);
  main().querySelector("h1").textContent = "Rollout " + r.rollout_id;
  section("rollout-meta", "").replaceChildren(el("div", { class: "meta" }, badge(r.status),
    ` plan ${r.plan} · stage ${r.stage} · traffic ${pct(r.traffic)} · ${r.decisions} decisions`));
  section("stages", "Stages").replaceChildren(table("stages-table", ["", "stage", "traffic", "manual approval"],
    r.stages.map((s, i) => [i < r.stage_index ? "✓" : i === r.stage_index ? "▶" : "",
      el("b", { text: s.name }), pct(s.traffic), s.manual_approval ? "yes" : ""])));
  const last = audit.length ? audit[audit.length - 1] : null;
  const gates = section("gates", "Gate evidence (latest decision)");
  if (!last || !last.gates.length) {
    gates.replaceChildren(el("p", { class: "empty", text: last ? "No gate evaluated yet." : "No decision yet." }));
  } else {
    gates.replaceChildren(table("gates-table",
      ["metric", "segment", "test", "verdict", "estimate", "interval", "limit", "p", "adjusted p", "exposures"],
      last.gates.map((g) => [g.metric, g.segment, g.test, badge(g.verdict, g.verdict === "fail" ? "critical" : g.verdict === "pass" ? "ok" : "continue"),
        num(g.estimate), `[${num(g.lower)}, ${num(g.upper)}]`, num(g.limit), num(g.p_value), num(g.adjusted_p),
        count(g.treatment_exposures) + (g.comparator_exposures !== null ? " vs " + count(g.comparator_exposures) : "")])));
  }
  if (audit.length) {
    let chart = document.getElementById("traffic-chart");
    if (!chart) {
      chart = el("div", { id: "traffic-chart", class: "chart" });
      section("traffic", "Traffic over decisions").append(chart);
    }
    const colour = { advance: "#2f855a", continue: "#718096", hold: "#dd6b20", roll_back: "#c53030" };
    await Plotly.react(chart, [{
      x: audit.map((a) => new Date(a.time * 1000)), y: audit.map((a) => a.traffic),
      text: audit.map((a) => `${a.action} at ${a.stage}: ${a.reasons.join("; ")}`), hoverinfo: "text",
      mode: "lines+markers", line: { shape: "hv", color: "#2b6cb0" },
      marker: { size: 9, color: audit.map((a) => colour[a.action] || "#2b6cb0") } }],
      { margin: { l: 55, r: 15, t: 15, b: 40 }, yaxis: { title: { text: "traffic share" }, rangemode: "tozero" },
        showlegend: false, uirevision: "traffic" }, { responsive: true, displaylogo: false });
  }
  section("history", "Decision history").replaceChildren(audit.length ? table("history-table",
    ["#", "time", "action", "stage", "traffic", "reasons"],
    audit.slice().reverse().map((a) => [String(a.state.decisions), when(a.time), badge(a.action), a.stage,
      pct(a.traffic), a.reasons.join("; ")])) : el("p", { class: "empty", text: "No decision yet." }));
}

// ---- refresh loop -------------------------------------------------------------------------
const PAGES = { runs: drawRuns, run: drawRun, alerts: drawAlerts, rollouts: drawRollouts, rollout: drawRollout };

function report(err) {
  if (err instanceof Unauthorized) {
    document.getElementById("login").hidden = false;
    setStatus("token needed", true);
  } else {
    setStatus("error: " + err.message, true);
  }
}

async function refresh() {
  try {
    await PAGES[PAGE]();
    setStatus("updated " + new Date().toLocaleTimeString());
    body.dataset.loaded = "1";
  } catch (err) {
    report(err);
  }
}

document.getElementById("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
  document.getElementById("login").hidden = true;
  refresh();
});

refresh();
setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
