// One experiment: its state and spec, charts per cycle, TFLite numbers, the architecture diff,
// downloads, cancel and rerun; live while it runs (server-sent events, charts redrawn in place).

import { api, ApiError } from "../api.js";
import { byId, debounce, h, markReady, replace } from "../dom.js";
import { cycleProgressLabel, emptyState, isLive, markNav, notice, progressBar, queueState, segmented, stat, statusBadge, tagChips, toast } from "../components.js";
import * as fmt from "../format.js";
import { Chart, drawWhenVisible, prefetchFigure } from "../plots.js";
import { specView } from "../spec-view.js";
import { architectureView } from "../architecture.js";
import { criterionLabel, loadCriterionLabels } from "../criteria.js";
import { lineage, manageButtons, tagsAndNotes } from "../run-actions.js";

const experimentId = Number(location.pathname.split("/").filter(Boolean).pop());
const base = `/api/experiments/${experimentId}`;

const view = {
  detail: null,
  index: null,
  widths: { stacked: false, stage: "after" },
  costs: { normalise: false },
  training: { log: null }, // null: log when the loss spans decades (the server decides)
  activations: { layer: null, log: true },
  criterion: { layer: null, cycle: null },
  // `auto`: cycle 0 → the final (kept) cycle, following a live experiment; false once the user chooses
  diff: { before: null, after: null, auto: true },
};
const charts = {};
/** The charts on the first screen, drawn first: their figures are asked for as the page starts. */
const FIRST_SCREEN = ["widths", "costs"];
let events = null;
let notesEditor = null; // built once: a header re-rendered while live keeps an open edit

// ---------------------------------------------------------------------------------------- header

function header(detail) {
  const live = isLive(detail.status);
  const actions = h(
    "div",
    { class: "exp-actions" },
    h("a", { class: "btn", href: `/compare?ids=${detail.id}`, title: "Open in the compare view (add more there)" }, "Compare"),
    h("button", { type: "button", class: "btn", id: "rerun", onclick: rerun, title: "Run the same spec again as a new experiment" }, "Rerun"),
    live
      ? h("button", { type: "button", class: "btn btn-danger", id: "cancel", onclick: cancel, disabled: detail.cancel_requested }, detail.cancel_requested ? "Cancelling…" : "Cancel")
      : null,
    manageButtons(detail),
  );
  const created = fmt.relativeTime(detail.created_at);
  const meta = h(
    "div",
    { class: "exp-meta" },
    h("span", {}, "Owner ", h("strong", {}, detail.owner)),
    h("span", { title: created.title }, "Created ", h("strong", {}, created.text)),
    detail.started_at && detail.finished_at
      ? h("span", {}, "Ran for ", h("strong", {}, fmt.duration((new Date(detail.finished_at) - new Date(detail.started_at)) / 1000)))
      : null,
    detail.stop_reason ? h("span", {}, "Stopped: ", h("strong", {}, detail.stop_reason.replaceAll("_", " "))) : null,
    detail.attempts > 1 ? h("span", {}, "Attempts ", h("strong", {}, String(detail.attempts))) : null,
    detail.tags.length ? tagChips(detail.tags) : null,
    lineage(detail),
  );
  notesEditor ??= tagsAndNotes(detail, (saved) => {
    Object.assign(view.detail, { tags: saved.tags, notes: saved.notes, edited_at: saved.edited_at, edited_by: saved.edited_by });
    renderHeader();
  });
  return h(
    "div",
    { class: "exp-head" },
    h(
      "div",
      { class: "exp-title" },
      h("h1", { id: "experiment-name" }, detail.name),
      h("span", { class: "faint" }, `#${detail.id}`),
      h("span", { id: "experiment-status" }, statusBadge(detail.status, detail.cancel_requested)),
      live && events ? h("span", { class: "live-dot", title: "This page follows the experiment live" }, "live") : null,
      h("span", { class: "spacer" }),
      actions,
    ),
    meta,
    live ? liveProgress(detail) : null,
    detail.error ? h("div", { class: "error-box" }, notice("error", h("strong", {}, "The experiment failed."), h("pre", {}, detail.error))) : null,
    notesEditor,
  );
}

// detail.progress_detail is a ProgressDetail (backend/progress.py; its fields are in the OpenAPI schema)
function liveProgress(detail) {
  const progress = detail.progress_detail || {};
  const parts = [];
  if (detail.status === "queued") parts.push(queueState(detail));
  if (progress.stage === "benchmarking") {
    // the worker converts and times the chosen cycles' models after the last cycle (or on request)
    const cycles = Array.isArray(progress.benchmark_cycles) ? progress.benchmark_cycles.join(", ") : "";
    parts.push(`Benchmarking TFLite models${cycles ? ` of cycles ${cycles}` : ""}`);
  } else {
    if (Number.isInteger(progress.cycle)) parts.push(`cycle ${progress.cycle}`);
    if (Number.isInteger(progress.epoch)) parts.push(`epoch ${progress.epoch}${progress.epochs ? ` of ${progress.epochs}` : ""}`);
    if (Number.isFinite(progress.val_loss)) parts.push(`val loss ${fmt.num(progress.val_loss)}`);
    if (Number.isFinite(progress.val_metric)) parts.push(`val ${progress.metric_name || "metric"} ${fmt.metric(progress.val_metric, progress.metric_name)}`);
  }
  return h(
    "div",
    { class: "live-progress" },
    progressBar(detail.progress, "experiment progress"),
    h("strong", { id: "progress-cycles" }, cycleProgressLabel(detail)),
    h("div", { class: "progress-text", id: "progress-text" }, parts.join(" · ") || "Starting…"),
  );
}

function stats(detail) {
  const params = fmt.reduction(detail.initial_params, detail.final_params);
  const flops = fmt.reduction(detail.initial_flops, detail.final_flops);
  const speedup = Number.isFinite(detail.latency_speedup) ? `×${detail.latency_speedup.toFixed(2)}` : "–";
  return h(
    "div",
    { class: "stats" },
    stat("Cycles", fmt.int(detail.cycles_done), detail.final_cycle !== null ? `final cycle ${detail.final_cycle}` : ""),
    stat("Parameters", fmt.compact(detail.final_params ?? detail.initial_params), params ? `${params.text} (${params.factor})` : "initial", params?.title),
    stat("FLOPs", fmt.compact(detail.final_flops ?? detail.initial_flops), flops ? `${flops.text} (${flops.factor})` : "initial", flops?.title),
    stat("Final metric", fmt.metric(detail.final_metric, detail.metric_name), detail.metric_name ? `validation ${detail.metric_name} of the kept model` : ""),
    stat("Best so far", fmt.metric(detail.best_metric, detail.metric_name), "best validation metric of any accepted cycle"),
    stat("Latency speed-up", speedup, "TFLite, median"),
    h(
      "div",
      { class: "stat", id: "kept-widths" },
      h("div", { class: "stat-label" }, "Kept model widths"),
      h("div", { class: "stat-detail", id: "kept-widths-values" }, fmt.widths(detail.final_widths)),
      h("div", { class: "stat-detail faint" }, detail.final_cycle !== null && detail.final_cycle !== undefined
        ? `as trained in cycle ${detail.final_cycle}, the final (kept) cycle; the chart's "After pruning" bars show what that cycle's pruning would hand on`
        : "as trained by the final (kept) cycle"),
    ),
  );
}

function jumpLinks() {
  const targets = [["sec-charts", "Charts"], ["sec-cycles", "Cycles"], ["sec-diff", "Architecture diff"], ["sec-tflite", "TFLite"], ["sec-spec", "Spec"], ["sec-downloads", "Downloads"]];
  return h("nav", { class: "jump", "aria-label": "On this page" }, targets.map(([id, label]) => h("a", { href: `#${id}` }, label)));
}

function renderHeader() {
  const detail = view.detail;
  document.title = `${detail.name} · prunelab`;
  byId("crumb-name").textContent = detail.name;
  replace(byId("header-card"), header(detail), stats(detail), jumpLinks());
}

// ---------------------------------------------------------------------------------------- actions

async function cancel() {
  try {
    await api.post(`${base}/cancel`, {});
    toast("Cancel requested: a running experiment stops after its current epoch.");
  } catch (error) {
    toast(`Could not cancel: ${error.message}`, "error");
  }
  await refreshDetail();
}

async function rerun() {
  const button = byId("rerun");
  button.disabled = true;
  try {
    const created = await api.post(`${base}/rerun`, {});
    location.assign(`/experiments/${created.id}`);
  } catch (error) {
    button.disabled = false;
    toast(`Could not rerun: ${error.message}`, "error");
  }
}

// ---------------------------------------------------------------------------------------- charts

function chartCard({ id, title, hint, controls, tall = false, taller = false, wide = false }) {
  const element = h("div", { id: `chart-${id}`, class: ["chart", "chart-loading", tall ? "tall" : null, taller ? "taller" : null], role: "img", "aria-label": title }, "Loading chart…");
  const card = h(
    "section",
    { class: ["card", wide ? "wide" : null], "aria-label": title },
    h("div", { class: "card-head" }, h("div", {}, h("h2", {}, title), hint ? h("div", { class: "hint", id: `${id}-hint` }, hint) : null), controls ? h("div", { class: "chart-controls" }, controls) : null),
    h("div", { class: "card-body", style: { padding: "4px 8px 8px" } }, element),
  );
  return { card, element };
}

function figureUrl(name, options) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(options)) {
    if (value !== null && value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return `${base}/figures/${name}${text ? `?${text}` : ""}`;
}

function layerSelect(id, current, onChange) {
  const layers = view.index?.layers || [];
  return h(
    "label",
    {},
    "Layer",
    h(
      "select",
      { id, disabled: !layers.length, onchange: (event) => onChange(event.target.value) },
      layers.length ? layers.map((layer) => h("option", { value: layer, selected: layer === current }, layer)) : h("option", {}, "none yet"),
    ),
  );
}

function cycleOptions(select, current, latestLabel) {
  const cycles = view.index?.cycles || [];
  replace(
    select,
    h("option", { value: "", selected: current === null }, latestLabel),
    cycles.map((cycle) => h("option", { value: String(cycle), selected: cycle === current }, fmt.cycleLabel(cycle, view.index?.cycle_marks))),
  );
}

function buildCharts(root) {
  const widths = chartCard({
    id: "widths",
    title: "Units kept per layer",
    hint: "Units (dense) or channels (conv) of the prunable layers per cycle. Trained: the model the cycle trained (the final cycle's is the kept model); After pruning: what its pruning kept (a rejected cycle keeps nothing of its own: the next cycle is pruned again from the last kept model, with a smaller step when the recipe backs off). Outlined: final (kept); hatched: rejected.",
    controls: [
      segmented("Bars", [{ value: false, label: "Grouped" }, { value: true, label: "Stacked" }], view.widths.stacked, (value) => { view.widths.stacked = value; charts.widths.refresh(); }),
      segmented("Stage", [{ value: "after", label: "After pruning" }, { value: "before", label: "Trained" }], view.widths.stage, (value) => { view.widths.stage = value; charts.widths.refresh(); }),
    ],
  });
  const costs = chartCard({
    id: "costs",
    title: "Parameters and FLOPs",
    hint: "Of the model each cycle trained; star: final (kept), x: rejected",
    controls: segmented("Scale", [{ value: false, label: "Absolute" }, { value: true, label: "% of cycle 0" }], false, (value) => { view.costs.normalise = value; charts.costs.refresh(); }),
  });
  const training = chartCard({
    id: "training",
    title: "Loss and metric per epoch",
    hint: "Every cycle on one time axis; dotted lines mark cycle boundaries",
    wide: true,
    tall: true,
    controls: segmented("Loss axis", [{ value: null, label: "Auto" }, { value: false, label: "Linear" }, { value: true, label: "Log" }], view.training.log, (value) => { view.training.log = value; charts.training.refresh(); }),
  });
  const activations = chartCard({
    id: "activations",
    title: "Activation histograms",
    hint: "One row per cycle",
    tall: true,
    controls: [
      h("span", { id: "activations-layer" }),
      segmented("Colour", [{ value: false, label: "Count" }, { value: true, label: "Log" }], view.activations.log, (value) => { view.activations.log = value; charts.activations.refresh(); }),
    ],
  });
  const metricFlops = chartCard({
    id: "metric-flops",
    title: "Metric vs FLOPs",
    hint: "Validation metric of each cycle's model against its FLOPs; star: final (kept), x: rejected",
  });
  const criterionSelect = h("select", { id: "criterion-cycle", onchange: (event) => { view.criterion.cycle = event.target.value === "" ? null : Number(event.target.value); charts.criterion.refresh(); } });
  const criterion = chartCard({
    id: "criterion",
    title: "Pruning criterion",
    hint: criterionHint(),
    controls: [h("span", { id: "criterion-layer" }), h("label", {}, "Cycle", criterionSelect)],
    tall: true,
  });
  replace(
    root,
    h("div", { class: "section-title", id: "sec-charts" }, h("h2", {}, "Pruning over cycles")),
    h("div", { class: "grid" }, widths.card, costs.card, metricFlops.card),
    h("div", { class: "section-title" }, h("h2", {}, "Training")),
    h("div", { class: "grid" }, training.card),
    h("div", { class: "section-title" }, h("h2", {}, "Activations and the criterion")),
    h("div", { class: "grid" }, activations.card, criterion.card),
  );
  charts.widths = new Chart(widths.element, () => figureUrl("widths", view.widths));
  charts.costs = new Chart(costs.element, () => figureUrl("costs", view.costs));
  charts.metricFlops = new Chart(metricFlops.element, () => figureUrl("metric-flops", {}));
  charts.training = new Chart(training.element, () => figureUrl("training", view.training));
  charts.activations = new Chart(activations.element, () => figureUrl("activations", view.activations));
  charts.criterion = new Chart(criterion.element, () => figureUrl("criterion", view.criterion));
  updateLayerControls();
}

function criterionHint() {
  const criterion = view.index?.criterion || {};
  const parameter = criterion.k !== undefined ? `k = ${criterion.k}` : criterion.threshold !== undefined ? `threshold = ${criterion.threshold}` : "";
  const rules = (view.detail?.spec?.pruning?.rules || []).filter((rule) => rule.criterion);
  const ruled = rules.map((rule) => `${rule.layers.join(", ")}: ${criterionLabel(rule.criterion.type)}`);
  const base = `${criterion.type ? criterionLabel(criterion.type) : "criterion"}${parameter ? `, ${parameter}` : ""}`;
  return `${base}${ruled.length ? ` (rules: ${ruled.join("; ")})` : ""}: threshold dashed, removed units red`;
}

function updateLayerControls() {
  const layers = view.index?.layers || [];
  for (const key of ["activations", "criterion"]) {
    if (!layers.includes(view[key].layer)) view[key].layer = layers[0] ?? null;
    replace(
      byId(`${key}-layer`),
      layerSelect(`${key}-layer-select`, view[key].layer, (layer) => {
        view[key].layer = layer;
        charts[key].refresh();
      }),
    );
  }
  const cycles = view.index?.cycles || [];
  cycleOptions(byId("criterion-cycle"), view.criterion.cycle, cycles.length ? `latest (${cycles[cycles.length - 1]})` : "latest");
}

// ---------------------------------------------------------------------------------------- tables

// The words of a marked cycle ("final (kept)", "rejected"), as the charts write them; null for others.
function cycleMark(index) {
  return view.index?.cycle_marks?.[String(index)] ?? null;
}

function markChip(index) {
  const words = cycleMark(index);
  if (!words) return null;
  return h("span", { class: words === "rejected" ? "badge badge-failed cycle-mark" : "chip cycle-mark cycle-mark-final", style: { marginLeft: "6px" } }, words);
}

// "from cycle j" on a cycle whose model was pruned from an earlier cycle than the one before it: the last
// kept cycle, pruned again with a smaller step after rejected cycles (pruning.backoff); null for others.
function backoffChip(cycle) {
  const from = cycle.pruned_from;
  if (!Number.isInteger(from) || from === cycle.index - 1) return null;
  return h(
    "span",
    { class: "chip cycle-from", title: `Pruned from cycle ${from}'s model (the last kept) with a smaller step, after the rejected cycle${cycle.index - from > 2 ? "s" : ""} in between`, style: { marginLeft: "6px" } },
    `from cycle ${from}`,
  );
}

function cyclesTable(detail) {
  if (!detail.cycles.length) {
    return emptyState("No finished cycles yet", isLive(detail.status) ? "The first cycle appears here when it finishes; this page updates by itself." : "This experiment finished without a cycle.");
  }
  const metric = detail.metric_name || "metric";
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data compact", id: "cycles-table" },
      h("thead", {}, h("tr", {}, ["Cycle", "Widths trained → kept", "Params", "FLOPs", "Loss", "Val loss", `Val ${metric}`, ""].map((label, i) => h("th", { class: i >= 2 && i <= 6 ? "num" : null }, label)))),
      h(
        "tbody",
        {},
        detail.cycles.map((cycle) =>
          h(
            "tr",
            { dataset: { cycle: String(cycle.index) }, class: cycleMark(cycle.index) ? `cycle-${cycleMark(cycle.index) === "rejected" ? "rejected" : "final"}` : null },
            h("td", {}, String(cycle.index), markChip(cycle.index), backoffChip(cycle)),
            h("td", { class: "widths-cell" }, Object.keys(cycle.widths).map((name) => `${name} ${cycle.widths[name]}→${cycle.widths_after[name] ?? cycle.widths[name]}`).join(" · ")),
            h("td", { class: "num" }, fmt.int(cycle.params)),
            h("td", { class: "num" }, fmt.int(cycle.flops)),
            h("td", { class: "num" }, fmt.num(cycle.loss)),
            h("td", { class: "num" }, fmt.num(cycle.val_loss)),
            h("td", { class: "num" }, fmt.metric(cycle.val_metric, detail.metric_name)),
            h("td", {}, cycle.accepted || markChip(cycle.index) ? "" : h("span", { class: "badge badge-failed" }, "rejected")),
          ),
        ),
      ),
    ),
  );
}

function diffControls() {
  const cycles = view.index?.cycles || [];
  const marks = view.index?.cycle_marks;
  const before = h("select", { id: "diff-before", "aria-label": "From cycle" }, cycles.map((cycle) => h("option", { value: String(cycle), selected: cycle === view.diff.before }, fmt.cycleLabel(cycle, marks))));
  const after = h(
    "select",
    { id: "diff-after", "aria-label": "To" },
    h("option", { value: "", selected: view.diff.after === null }, "what its pruning kept"),
    cycles.map((cycle) => h("option", { value: String(cycle), selected: cycle === view.diff.after }, fmt.cycleLabel(cycle, marks))),
  );
  const changed = () => {
    view.diff.auto = false;
    view.diff.before = Number(before.value);
    view.diff.after = after.value === "" ? null : Number(after.value);
    loadDiff();
  };
  before.addEventListener("change", changed);
  after.addEventListener("change", changed);
  return h("div", { class: "chart-controls" }, h("label", {}, "From", before), h("label", {}, "to", after));
}

async function loadDiff() {
  const target = byId("diff-body");
  if (view.diff.before === null) {
    replace(target, emptyState("Nothing to compare yet", "The diff needs at least one finished cycle."));
    return;
  }
  const params = new URLSearchParams({ before: String(view.diff.before) });
  if (view.diff.after !== null) params.set("after", String(view.diff.after));
  try {
    const diff = await api.get(`${base}/architecture?${params}`);
    replace(target, architectureView(diff));
  } catch (error) {
    replace(target, notice("error", `Could not load the diff: ${error.message}`));
  }
}

// Why the TFLite table's Keras metric and the cycles' validation metric of the same cycle differ.
function fidelityNote() {
  const spec = view.detail?.spec || {};
  const metric = view.detail?.metric_name || "metric";
  const samples = spec.benchmark?.fidelity_samples;
  const test = spec.dataset?.test_samples;
  const scored = Number.isInteger(samples) ? `the first ${fmt.int(samples)} test examples` : "the test examples";
  const whole = Number.isInteger(test) ? `all ${fmt.int(test)} test examples` : "the whole test set";
  return `* Keras and TFLite ${metric} are scored on the same ${scored} (benchmark.fidelity_samples), so their difference is the conversion's alone. The cycles table's validation ${metric} is measured during training on ${whole}, so it can differ from the Keras number here.`;
}

function tfliteTable(rows) {
  const metric = view.detail?.metric_name || "metric";
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data compact", id: "tflite-table" },
      h("thead", {}, h("tr", {}, ["Cycle", "Format", "Status", "Median latency", "p90", "Size", "Bits", `Keras ${metric}*`, `TFLite ${metric}*`, "File"].map((label, i) => h("th", { class: i >= 3 && i <= 8 ? "num" : null, title: i === 7 || i === 8 ? fidelityNote() : null }, label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            {},
            h("td", {}, fmt.cycleLabel(row.cycle_index, view.index?.cycle_marks)),
            h("td", { class: "mono" }, row.format),
            h("td", { title: row.error || "" }, row.status),
            h("td", { class: "num" }, Number.isFinite(row.latency_median_us) ? `${fmt.num(row.latency_median_us)} µs` : "–"),
            h("td", { class: "num" }, Number.isFinite(row.latency_p90_us) ? `${fmt.num(row.latency_p90_us)} µs` : "–"),
            h("td", { class: "num" }, fmt.bytes(row.model_bytes)),
            h("td", { class: "num", title: "parameters × bits per parameter in this format" }, Number.isFinite(row.total_bits) ? `${fmt.num(row.total_bits / 1e6)} Mbit` : "–"),
            h("td", { class: "num" }, fmt.metric(row.keras_metric, metric)),
            h("td", { class: "num" }, fmt.metric(row.tflite_metric, metric)),
            h("td", {}, row.artifact_url ? h("a", { href: row.artifact_url, download: "" }, "download") : ""),
          ),
        ),
      ),
    ),
  );
}

async function loadTFLite() {
  const target = byId("tflite-body");
  let rows;
  try {
    rows = (await api.get(`${base}/benchmarks`)).rows;
  } catch (error) {
    replace(target, notice("error", `Could not load TFLite benchmarks: ${error.message}`));
    return;
  }
  if (!rows.length) {
    replace(
      target,
      h("section", { class: "card" }, emptyState(
        "No TFLite benchmarks yet",
        isLive(view.detail.status)
          ? "The models are converted to TFLite and timed after the last cycle; the numbers appear here."
          : "This experiment has no TFLite measurements. Experiments run with a benchmark section in their spec are converted and timed after their last cycle.",
      )),
    );
    charts.tflite = null;
    charts.speedup = null;
    return;
  }
  if (!charts.tflite) {
    const latency = chartCard({ id: "tflite", title: "Latency, size and fidelity", hint: "Per cycle and TFLite format", taller: true });
    const speedup = chartCard({ id: "speedup", title: "Speed-up against FLOPs reduction", hint: "Dotted: speed-up equal to the FLOPs reduction", taller: true });
    replace(target, h("div", { class: "grid" }, latency.card, speedup.card), h("div", { id: "tflite-rows", class: "section" }));
    charts.tflite = new Chart(latency.element, () => figureUrl("tflite", {}));
    charts.speedup = new Chart(speedup.element, () => figureUrl("speedup", {}));
  }
  replace(byId("tflite-rows"), h("section", { class: "card" }, tfliteTable(rows), h("p", { class: "hint table-note", id: "fidelity-note" }, fidelityNote())));
  for (const chart of [charts.tflite, charts.speedup]) drawWhenVisible(chart.element, () => chart.refresh());
}

async function loadArtifacts() {
  const target = byId("artifacts-body");
  try {
    const artifacts = await api.get(`${base}/artifacts`);
    if (!artifacts.length) {
      replace(target, emptyState("No files yet", "Each finished cycle stores its trained model here; the final model and TFLite files follow."));
      return;
    }
    const kinds = { trained: "trained model", checkpoint: "pruned checkpoint", final: "final model", tflite: "TFLite model" };
    replace(
      target,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data compact", id: "artifacts-table" },
          h("thead", {}, h("tr", {}, ["What", "Cycle", "File", "Size", "SHA-256", ""].map((label, i) => h("th", { class: i === 3 ? "num" : null }, label)))),
          h(
            "tbody",
            {},
            artifacts.map((artifact) =>
              h(
                "tr",
                {},
                h("td", {}, kinds[artifact.kind] || artifact.kind),
                h("td", {}, artifact.cycle_index ?? "–"),
                h("td", { class: "mono" }, artifact.filename),
                h("td", { class: "num" }, fmt.bytes(artifact.size_bytes)),
                h("td", { class: "mono faint", title: artifact.sha256 }, artifact.sha256.slice(0, 12)),
                h("td", {}, h("a", { class: "btn btn-small", href: `/api/artifacts/${artifact.id}`, download: "" }, "Download")),
              ),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    replace(target, notice("error", `Could not list the files: ${error.message}`));
  }
}

// ---------------------------------------------------------------------------------------- loading

async function refreshDetail() {
  view.detail = await api.get(base);
  renderHeader();
  replace(byId("cycles-body"), cyclesTable(view.detail));
  if (!isLive(view.detail.status)) stopEvents();
}

async function refreshIndex() {
  view.index = await api.get(`${base}/figures`);
  applyIndex();
}

function applyIndex() {
  const cycles = view.index.cycles;
  const lost = view.diff.before !== null && !cycles.includes(view.diff.before);
  if (cycles.length && (view.diff.auto || view.diff.before === null || lost)) {
    // cycle 0 → the final (kept) cycle, never a rejected one; with one cycle, what its pruning kept
    const final = Number.isInteger(view.index.final_cycle) ? view.index.final_cycle : null;
    view.diff.before = cycles[0];
    view.diff.after = final !== null && final !== cycles[0] ? final : null;
  }
  updateLayerControls();
  replace(byId("diff-controls"), cycles.length ? diffControls() : "");
}

async function refreshCycles() {
  await Promise.all([refreshDetail(), refreshIndex()]);
  await Promise.all([
    charts.widths.refresh(),
    charts.costs.refresh(),
    charts.metricFlops.refresh(),
    charts.training.refresh(),
    charts.activations.refresh(),
    charts.criterion.refresh(),
    loadDiff(),
    loadTFLite(),
    loadArtifacts(),
  ]);
}

const onEpoch = debounce(async () => {
  try {
    await Promise.all([refreshDetail(), charts.training.refresh()]);
  } catch {
    /* the next event retries */
  }
}, 250);

const onCycle = debounce(() => refreshCycles().catch(() => {}), 250);

function followEvents() {
  if (!window.EventSource || events) return;
  events = new EventSource(`${base}/events`);
  events.addEventListener("epoch", onEpoch);
  events.addEventListener("cycle", onCycle);
  events.addEventListener("status", () => refreshDetail().catch(() => {}));
  events.addEventListener("end", () => {
    stopEvents();
    refreshCycles().catch(() => {});
  });
}

function stopEvents() {
  if (!events) return;
  events.close();
  events = null;
  if (view.detail) renderHeader();
}

function skeletonPage(root) {
  replace(
    root,
    h("section", { class: "card", id: "header-card" }),
    h("div", { id: "charts" }),
    h("div", { class: "section-title", id: "sec-cycles" }, h("h2", {}, "Cycles")),
    h("section", { class: "card", id: "cycles-body" }),
    h("div", { class: "section-title", id: "sec-diff" }, h("h2", {}, "Architecture diff"), h("span", { class: "hint" }, "Layers with their inputs, channel groups and the model's graph, before → after")),
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("div", { id: "diff-controls" })), h("div", { id: "diff-body" })),
    h("div", { class: "section-title", id: "sec-tflite" }, h("h2", {}, "TFLite"), h("span", { class: "hint" }, "Latency, size and fidelity of the converted models")),
    h("div", { id: "tflite-body", class: "card-slot" }),
    h("div", { class: "section-title", id: "sec-spec" }, h("h2", {}, "Spec")),
    h("section", { class: "card" }, h("div", { class: "card-body", id: "spec-body" })),
    h("div", { class: "section-title", id: "sec-downloads" }, h("h2", {}, "Downloads"), h("span", { class: "hint" }, "Models and TFLite files, by id")),
    h("section", { class: "card", id: "artifacts-body" }),
  );
}

async function main() {
  markNav();
  const root = byId("experiment-root");
  if (!Number.isInteger(experimentId) || experimentId < 1) {
    replace(root, h("section", { class: "card" }, emptyState("Not an experiment address", "", h("a", { class: "btn", href: "/" }, "All experiments"))));
    markReady("experiment");
    return;
  }
  // The first screen's figures (default options) are asked for with the page's data, not after it.
  for (const name of FIRST_SCREEN) prefetchFigure(figureUrl(name, view[name]));
  const labels = loadCriterionLabels();
  const index = api.get(`${base}/figures`).catch(() => ({ cycles: [], layers: [], criterion: {}, figures: [] }));
  try {
    view.detail = await api.get(base);
  } catch (error) {
    const missing = error instanceof ApiError && error.status === 404;
    replace(root, h("section", { class: "card" }, emptyState(missing ? `Experiment ${experimentId} does not exist` : "Could not load the experiment", missing ? "It may have been deleted." : error.message, h("a", { class: "btn", href: "/" }, "All experiments"))));
    byId("crumb-name").textContent = missing ? "not found" : "error";
    markReady("experiment");
    return;
  }
  skeletonPage(root);
  if (isLive(view.detail.status)) followEvents();
  renderHeader();
  replace(byId("cycles-body"), cyclesTable(view.detail));
  replace(byId("spec-body"), specView(view.detail.spec));
  view.index = await index;
  replace(byId("cycles-body"), cyclesTable(view.detail));
  buildCharts(byId("charts"));
  applyIndex();
  // the criteria's labels arrive from the API's schema, later than the data: the texts that name them
  labels.then(() => {
    byId("criterion-hint").textContent = criterionHint();
    replace(byId("spec-body"), specView(view.detail.spec));
  });
  await Promise.all([
    ...["widths", "costs", "metricFlops", "training", "activations", "criterion"].map((name) => drawWhenVisible(charts[name].element, () => charts[name].refresh())),
    loadDiff(),
    loadTFLite(),
    loadArtifacts(),
  ]);
  markReady("experiment");
}

main();
