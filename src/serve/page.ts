/**
 * The page `deno task serve` shows: pick or drop a face photo, see each task's predicted
 * class with a bar chart of its probabilities, the model's policy map (tasks × blocks) and
 * the run summary. Plain HTML, CSS and script, no framework; it talks to the server's
 * `GET /api/model` and `POST /api/predict` ({@link ./server.ts}). Text from the model or
 * the upload is set with `textContent`, never parsed as HTML.
 *
 * For tests and scripts the page keeps its state in attributes: `body[data-state]` is
 * "loading", "idle", "busy", "done" or "error"; `body[data-results]` counts the predictions
 * shown; each task is `[data-task][data-label]` and each bar `[data-class][data-probability]`.
 * @module
 */

/** The page, served as `text/html` at `/`. */
export const PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fbp — facial beauty prediction</title>
<style>
  :root { --ink: #1d2430; --muted: #5d6878; --line: #d9dee6; --accent: #2f6fdf;
    --exec: #2f9e6e; --skip: #e6e9ee; --bad: #b3261e; font-family: system-ui, sans-serif; }
  body { margin: 0; color: var(--ink); background: #f6f7f9; }
  header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 20px; }
  header p { margin: 4px 0 0; color: var(--muted); font-size: 13px; }
  main { display: grid; grid-template-columns: 300px 1fr; gap: 20px; padding: 20px 24px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
  h2 { font-size: 15px; margin: 0 0 10px; }
  #drop { display: block; border: 2px dashed var(--line); border-radius: 8px; padding: 18px 10px; text-align: center;
    color: var(--muted); font-size: 14px; cursor: pointer; }
  #drop.over { border-color: var(--accent); background: #eef3fd; }
  #drop img { display: block; max-width: 100%; max-height: 220px; margin: 10px auto 0; border-radius: 4px; }
  #message { margin-top: 10px; font-size: 14px; min-height: 1.2em; }
  body[data-state="error"] #message { color: var(--bad); font-weight: 600; }
  #tasks { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 14px; }
  .task h3 { margin: 0 0 2px; font-size: 15px; }
  .task .verdict { margin: 0 0 8px; font-size: 13px; color: var(--muted); }
  .task .verdict b { color: var(--ink); font-size: 16px; }
  .bar { display: grid; grid-template-columns: 44px 1fr 54px; align-items: center; gap: 6px;
    font-size: 12px; margin: 3px 0; }
  .bar .track { background: var(--skip); border-radius: 3px; height: 14px; overflow: hidden; }
  .bar .fill { background: #9fb8e8; height: 100%; }
  .bar.top .fill { background: var(--accent); }
  .bar .pct { text-align: right; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; font-size: 12px; }
  th, td { padding: 4px 6px; text-align: center; }
  th { font-weight: 600; color: var(--muted); }
  td.exec { background: var(--exec); color: #fff; }
  td.skip { background: var(--skip); color: var(--muted); }
  .summary td, .summary th { text-align: left; border-bottom: 1px solid var(--line); }
  .wide { grid-column: 1 / -1; display: grid; grid-template-columns: auto 1fr; gap: 20px; }
  .muted { color: var(--muted); font-size: 13px; }
  input[type=file] { margin-top: 10px; font-size: 12px; max-width: 100%; }
</style>
</head>
<body data-state="loading" data-results="0">
<header>
  <h1>fbp — facial beauty prediction</h1>
  <p id="model">loading the model…</p>
</header>
<main>
  <section class="card">
    <h2>Face photo</h2>
    <label id="drop" for="file">Drop a JPEG or PNG face photo here, or click to pick one
      <img id="preview" alt="" hidden>
    </label>
    <input id="file" type="file" accept="image/jpeg,image/png">
    <div id="message" role="status" aria-live="polite"></div>
  </section>
  <section class="card">
    <h2>Prediction</h2>
    <div id="tasks"><p class="muted">No photo yet.</p></div>
  </section>
  <div class="wide">
    <section class="card">
      <h2>Policy map</h2>
      <p class="muted">Blocks each task executes (✓) or skips (·).</p>
      <table id="policy"></table>
    </section>
    <section class="card">
      <h2>Run summary</h2>
      <div id="summary"><p class="muted">No metrics.json next to the checkpoint.</p></div>
    </section>
  </div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
};
const pct = (p) => (100 * p).toFixed(1) + "%";
let model = null;

function setState(state, message) {
  document.body.dataset.state = state;
  $("message").textContent = message ?? "";
}

function megabytes(n) {
  return (n / 1048576).toFixed(1) + " MB";
}

// A reply's JSON body, or null when it has none (a proxy's or crashed server's error page).
async function replyJson(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// The sentence to show for a refused request: the server's {error}, else its status.
function replyError(res, body) {
  if (body && typeof body.error === "string") return body.error;
  return "the server answered " + res.status + (res.statusText ? " " + res.statusText : "") +
    " without an explanation";
}

async function loadModel() {
  const res = await fetch("/api/model");
  const body = await replyJson(res);
  if (!res.ok || !body) throw new Error(replyError(res, res.ok ? null : body));
  model = body;
  const t = model.tasks.map((t) => t.name + " (" + t.classes.length + " classes)").join(", ");
  $("model").textContent = model.checkpoint + " — ResNet18" + (model.aff ? " + AFF" : "") +
    ", " + model.bn + " batch norm, input " + model.imageSize + "×" + model.imageSize +
    "; tasks: " + t;
  const head = el("tr", {}, el("th", { text: "task" }),
    ...model.blocks.map((b) => el("th", { text: b })));
  const rows = model.tasks.map((t) => el("tr", { "data-policy": t.name },
    el("th", { text: t.name }),
    ...model.policy[t.name].map((v, b) => el("td", {
      class: v ? "exec" : "skip",
      text: v ? "✓" : "·",
      title: t.name + " " + (v ? "executes " : "skips ") + model.blocks[b],
    }))));
  $("policy").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  const s = model.summary;
  if (s) {
    const lines = [];
    if (s.name) lines.push("run " + s.name);
    if (s.method) lines.push(s.method === "baseline" ? "baseline" : "AdaShare");
    if (s.split) lines.push(s.split + " split");
    if (s.trainSeconds !== undefined) lines.push("trained in " + s.trainSeconds.toFixed(1) + " s");
    const table = el("table", { class: "summary" },
      el("tr", {}, ...["task", "accuracy", "F1 (weighted)", "F1 (macro)", "images"]
        .map((h) => el("th", { text: h }))),
      ...s.tasks.map((m) => el("tr", { "data-summary": m.task },
        el("td", { text: m.task }), el("td", { text: pct(m.accuracy) }),
        el("td", { text: pct(m.f1Weighted) }), el("td", { text: pct(m.f1Macro) }),
        el("td", { text: String(m.count) }))));
    $("summary").replaceChildren(el("p", { class: "muted", text: lines.join(" · ") }), table);
  } else if (model.summaryNote) {
    $("summary").replaceChildren(el("p", { class: "muted", text: model.summaryNote }));
  }
  setState("idle");
}

function showPrediction(result) {
  const cards = model.tasks.map((t) => {
    const p = result.tasks[t.name];
    const bars = p.probabilities.map((v, k) => el("div", {
      class: "bar" + (k === p.label ? " top" : ""), "data-class": String(k),
      "data-probability": String(v),
    }, el("span", { text: t.classes[k] }),
      el("div", { class: "track" }, el("div", { class: "fill", style: "width:" + pct(v) })),
      el("span", { class: "pct", text: pct(v) })));
    return el("div", { class: "task", "data-task": t.name, "data-label": String(p.label) },
      el("h3", { text: t.name }),
      el("p", { class: "verdict" }, "predicted ", el("b", { text: t.classes[p.label] }),
        " with " + pct(p.probabilities[p.label])),
      ...bars);
  });
  $("tasks").replaceChildren(...cards);
  document.body.dataset.results = String(Number(document.body.dataset.results) + 1);
  setState("done", result.image);
}

// One upload at a time: while one is on its way the file input is disabled and drops are
// ignored, so a slow reply can never overwrite a newer one.
let busy = false;

function setBusy(value) {
  busy = value;
  $("file").disabled = value;
}

async function send(file) {
  if (!file || !model || busy) return;
  if (file.size > model.maxUploadBytes) {
    setState("error", "Cannot use \\"" + file.name + "\\": it is " + megabytes(file.size) +
      ", more than the limit of " + megabytes(model.maxUploadBytes));
    return;
  }
  setBusy(true);
  setState("busy", "Predicting " + file.name + "…");
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.hidden = !/^image\\/(jpeg|png)$/.test(file.type);
  if (!preview.hidden) preview.src = URL.createObjectURL(file);
  try {
    const res = await fetch("/api/predict", {
      method: "POST",
      body: file,
      headers: {
        "content-type": file.type || "application/octet-stream",
        // Required by the server: a custom header keeps other sites' pages from posting.
        "x-file-name": encodeURIComponent(file.name),
      },
    });
    const body = await replyJson(res);
    if (res.ok && body) showPrediction(body);
    else {
      preview.hidden = true;
      setState("error", res.ok ? "Cannot read the server's answer: it is not JSON" :
        replyError(res, body));
    }
  } catch (e) {
    setState("error", "Cannot reach the server: " + e.message);
  } finally {
    setBusy(false);
  }
}

$("file").addEventListener("change", (e) => {
  send(e.target.files[0]);
  e.target.value = "";
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  send(e.dataTransfer.files[0]);
});
loadModel().catch((e) => setState("error", "Cannot load the model description: " + e.message));
</script>
</body>
</html>
`;
