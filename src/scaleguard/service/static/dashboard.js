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

const ACTION_COLOUR = { start: "#2b6cb0", advance: "#2f855a", continue: "#718096", hold: "#dd6b20",
                        roll_back: "#c53030", approve: "#6b46c1" };
const GATE_CHARTS = 24;   // confidence-sequence charts drawn; every gate stays in the table

async function drawRollout() {
  const id = encodeURIComponent(KEY);
  // The history carries the newest audit entries whole: the page never reads the whole log.
  const [r, h] = await Promise.all([api(`/rollouts/${id}`), api(`/rollouts/${id}/history`)]);
  const audit = h.entries;
  main().querySelector("h1").textContent = "Rollout " + r.rollout_id;
  section("rollout-meta", "").replaceChildren(el("div", { class: "meta" }, badge(r.status),
    ` plan ${r.plan} · stage ${r.stage} · traffic ${pct(r.traffic)} · ${r.decisions} decisions`));
  drawApproval(r, h.approvals);
  section("stages", "Stages").replaceChildren(table("stages-table", ["", "stage", "traffic", "manual approval"],
    r.stages.map((s, i) => [i < r.stage_index ? "✓" : i === r.stage_index ? "▶" : "",
      el("b", { text: s.name }), pct(s.traffic),
      s.manual_approval ? (r.approved.includes(s.name) ? "approved" : r.awaiting_approval === s.name ? "waiting" : "yes") : ""])));
  if (h.ramp.length) await drawRamp(h.ramp, h.approvals);
  const decisions = audit.filter((a) => !a.kind);  // not approvals nor deploy-tool confirmations
  const last = decisions.length ? decisions[decisions.length - 1] : null;
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
  await drawSequences(h.gates, r.plan_spec);
  await drawSRM(h.srm, h.srm_latest);
  section("history", "Audit log").replaceChildren(audit.length ? table("history-table",
    ["#", "time", "action", "stage", "traffic", "by", "reasons"],
    audit.slice().reverse().map((a) => [a.state ? String(a.state.decisions) : "", when(a.time),
      badge(a.action || a.kind || ""), a.stage || "", pct(a.traffic), a.approved_by || (a.kind ? a.kind : "controller"),
      (a.reasons || []).join("; ") || (a.hook ? `${a.hook} ${a.phase || ""}` : "")])) : el("p", { class: "empty", text: "No decision yet." }));
}

// The Approve button: shown while a stage waits; built once per waiting stage, so that a
// note being typed survives the page's polling.
function drawApproval(r, approvals) {
  const box = section("approval", "Approval");
  const waiting = r.awaiting_approval;
  if (box.dataset.stage !== (waiting || "") || !box.childElementCount) {
    box.dataset.stage = waiting || "";
    const parts = [];
    if (waiting) {
      const note = el("input", { id: "approve-note", type: "text", maxlength: "1000", placeholder: "note (optional): why",
                                 size: "50" });
      const button = el("button", { id: "approve-button", type: "button", text: `Approve entering ${waiting}` });
      button.addEventListener("click", () => approveStage(r.rollout_id, waiting, note.value, button));
      parts.push(el("p", { class: "waiting", text: `Every gate at ${r.stage} passes; entering stage ${waiting} waits for a person's approval.` }),
                 el("div", { class: "approve" }, note, " ", button));
    } else {
      parts.push(el("p", { class: "empty", text: "No stage waits for approval." }));
    }
    parts.push(el("div", { id: "approvals" }));
    box.replaceChildren(...parts);
  }
  document.getElementById("approvals").replaceChildren(approvals.length ? table("approvals-table",
    ["stage", "approved by", "time", "note"],
    approvals.map((a) => [el("b", { text: a.stage }), a.approved_by, when(a.time), a.note || ""])) : "");
}

async function approveStage(rolloutId, stage, note, button) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {  // approving is a write: it always needs a token, even with open reads
    document.getElementById("login").hidden = false;
    setStatus("approving needs a write token", true);
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch(`/api/v1/rollouts/${encodeURIComponent(rolloutId)}/approve`, {
      method: "POST", headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify(note ? { stage, note } : { stage }) });
    let answer = {};
    try { answer = await response.json(); } catch (e) { /* not JSON */ }
    if (response.status === 401) { document.getElementById("login").hidden = false; throw new Error("a write token is needed"); }
    if (!response.ok) throw new Error(answer.error || response.statusText);
    setStatus(`approved entering ${answer.stage} as ${answer.approved_by}`);
    await PAGES[PAGE]();
  } catch (err) {
    setStatus("approval refused: " + err.message, true);
  } finally {
    button.disabled = false;
  }
}

function chartBox(id, sectionId, title) {
  let node = document.getElementById(id);
  if (!node) {
    node = el("div", { id, class: "chart" });
    const box = section(sectionId, title);
    box.classList.add("charts");
    box.append(node);
  }
  return node;
}

const PLOT_CONFIG = { responsive: true, displaylogo: false };

async function drawRamp(ramp, approvals) {
  const chart = chartBox("traffic-chart", "traffic", "Traffic ramp");
  const at = (t) => { let y = ramp[0].traffic; for (const p of ramp) if (p.time <= t) y = p.traffic; return y; };
  await Plotly.react(chart, [{
    x: ramp.map((p) => new Date(p.time * 1000)), y: ramp.map((p) => p.traffic), name: "traffic",
    text: ramp.map((p) => `#${p.seq} ${p.action} at ${p.stage}: ${pct(p.traffic)}`), hoverinfo: "text",
    mode: "lines+markers", line: { shape: "hv", color: "#2b6cb0" },
    marker: { size: 9, color: ramp.map((p) => ACTION_COLOUR[p.action] || "#2b6cb0") } }, {
    x: approvals.map((a) => new Date(a.time * 1000)), y: approvals.map((a) => at(a.time)), name: "approvals",
    text: approvals.map((a) => `${a.approved_by} approved entering ${a.stage}`), hoverinfo: "text",
    mode: "markers", marker: { size: 13, symbol: "star", color: ACTION_COLOUR.approve } }],
    { margin: { l: 55, r: 15, t: 15, b: 40 }, showlegend: false, uirevision: "traffic",
      yaxis: { title: { text: "traffic share" }, rangemode: "tozero", tickformat: ".0%" } }, PLOT_CONFIG);
}

// What a gate's numbers are: comparisons are treatment − control against the margin,
// guardrails treatment − guardrail against 0 (the guardrail itself); > 0 is worse.
function gateMeaning(series, spec) {
  const metric = (spec.metrics || []).find((m) => m.name === series.metric) || {};
  return series.test === "comparison"
    ? { axis: "treatment − control", line: `margin ${num(metric.margin)}` }
    : { axis: `treatment − guardrail ${num(metric.guardrail)}`, line: "guardrail" };
}

async function drawSequences(gates, spec) {
  const box = section("sequences", "Confidence sequences (harm direction: above the line is worse)");
  if (!gates.length) { box.replaceChildren(el("p", { class: "empty", text: "No gate evaluated yet." })); return; }
  box.classList.add("charts");
  const shown = gates.slice(0, GATE_CHARTS);
  const ids = shown.map((g, i) => "gate-chart-" + i);
  // Rebuild the boxes only when the set of gates changes (a new stage gates other segments).
  const signature = shown.map((g) => g.key).join("|");
  if (box.dataset.gates !== signature) {
    box.dataset.gates = signature;
    box.replaceChildren(...ids.map((id, i) => el("div", { id, class: "chart gate-chart", "data-gate": shown[i].key })));
    if (gates.length > shown.length) box.append(el("p", { class: "empty", text: `${gates.length - shown.length} more gates: see the table` }));
  }
  await Promise.all(shown.map((g, i) => {
    const x = g.time.map((t) => new Date(t * 1000));
    const meaning = gateMeaning(g, spec);
    const last = g.verdict[g.verdict.length - 1];
    return Plotly.react(document.getElementById(ids[i]), [
      { x, y: g.upper, mode: "lines", name: "upper bound", line: { width: 1, color: "#2b6cb0" } },
      { x, y: g.lower, mode: "lines", name: "lower bound", fill: "tonexty", fillcolor: "rgba(43,108,176,0.18)",
        line: { width: 1, color: "#2b6cb0" } },
      { x, y: g.estimate, mode: "markers", name: "estimate", marker: { size: 6, color: "#1a202c" } },
      { x, y: g.limit, mode: "lines", name: meaning.line, line: { dash: "dash", width: 2, color: "#c53030" } }],
      { title: { text: `${g.metric} · ${g.segment} · ${g.test}: ${last}`, font: { size: 13 } },
        margin: { l: 60, r: 15, t: 35, b: 35 }, showlegend: false, uirevision: g.key,
        yaxis: { title: { text: meaning.axis, font: { size: 11 } }, zeroline: false } }, PLOT_CONFIG);
  }));
}

async function drawSRM(looks, latest) {
  const box = section("srm", "Sample-ratio check");
  if (!latest) { box.replaceChildren(el("p", { class: "empty", text: "No SRM check yet (the plan may turn it off)." })); return; }
  const threshold = latest.alpha / Math.max(1, latest.checks.length);
  let summary = document.getElementById("srm-summary");
  if (!summary) {
    summary = el("div", { id: "srm-summary" });
    box.replaceChildren(summary, el("div", { id: "srm-chart", class: "chart" }));
  }
  summary.replaceChildren(el("p", {}, badge(latest.mismatch ? "mismatch" : "ok", latest.mismatch ? "critical" : "ok"),
      latest.mismatch ? ` the split is broken in ${latest.failing.join(", ")}: every gate is invalid, the rollout holds`
                      : ` the observed split matches the plan (always-valid p above ${num(threshold)})`),
    table("srm-table", ["metric", "segment", "counts", "treatment", "control", "planned share", "observed share", "p"],
      latest.checks.map((c) => [c.metric, c.segment, c.counted || "exposures", count(c.treatment), count(c.control), num(c.expected_share),
        num(c.observed_share), el("td", { class: c.p_value <= threshold ? "srm-fail" : "", text: num(c.p_value) })])));
  const x = looks.map((s) => new Date(s.time * 1000));
  await Plotly.react(document.getElementById("srm-chart"), [
    { x, y: looks.map((s) => s.min_p), mode: "lines+markers", name: "smallest p",
      marker: { color: looks.map((s) => (s.mismatch ? "#c53030" : "#2f855a")) }, line: { color: "#718096" } },
    { x, y: looks.map(() => threshold), mode: "lines", name: "threshold", line: { dash: "dash", color: "#c53030" } }],
    { margin: { l: 60, r: 15, t: 15, b: 35 }, showlegend: false, uirevision: "srm",
      yaxis: { title: { text: "smallest SRM p-value" }, type: "log" } }, PLOT_CONFIG);
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
