// Up to 20 experiments side by side: every setting (differences highlighted), a parallel-coordinates
// view of settings vs outcome, widths per layer vs cycle, metric vs FLOPs and vs latency with the
// Pareto front (a metric chooser when the experiments differ), loss curves, final architectures with
// speed-ups; CSV and JSON export of the comparison and of each experiment's cycles and epochs.

import { api, ApiError } from "../api.js";
import { byId, h, markReady, replace } from "../dom.js";
import { emptyState, markNav, notice, segmented, statusBadge } from "../components.js";
import * as fmt from "../format.js";
import { Chart, drawWhenVisible, prefetchFigure } from "../plots.js";

const MAX_COMPARED = 20;
// The figures' colours (backend/figures/common.py PALETTE), so chips match the traces.
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

let ids = parseIds(new URLSearchParams(location.search).get("ids"));
const pareto = { final_only: false, log: false, metric: null };
const charts = {};

function parseIds(text) {
  const out = [];
  for (const part of (text || "").split(",")) {
    const id = Number(part.trim());
    if (Number.isInteger(id) && id > 0 && !out.includes(id)) out.push(id);
  }
  return out.slice(0, MAX_COMPARED);
}

function setIds(next) {
  ids = next;
  history.replaceState(null, "", ids.length ? `/compare?ids=${ids.join(",")}` : "/compare");
  load();
}

function idsQuery() {
  return `ids=${ids.join(",")}`;
}

function addForm() {
  const input = h("input", { type: "text", id: "add-id", placeholder: "Experiment id", inputmode: "numeric", style: { width: "140px" }, "aria-label": "Experiment id to add" });
  return h(
    "form",
    {
      class: "row",
      onsubmit: (event) => {
        event.preventDefault();
        const added = parseIds(input.value);
        if (!added.length) return;
        setIds([...ids, ...added.filter((id) => !ids.includes(id))].slice(0, MAX_COMPARED));
      },
    },
    input,
    h("button", { type: "submit", class: "btn btn-small", disabled: ids.length >= MAX_COMPARED }, "Add"),
  );
}

function chips(experiments) {
  return h(
    "div",
    { class: "compare-chips", id: "compare-chips" },
    experiments.map((experiment, position) =>
      h(
        "span",
        { class: "compare-chip" },
        h("span", { class: "swatch", style: { background: PALETTE[position % PALETTE.length] }, "aria-hidden": "true" }),
        h("a", { href: `/experiments/${experiment.id}`, title: `${experiment.name} (#${experiment.id})` }, experiment.name),
        h("span", { class: "faint" }, `#${experiment.id}`),
        statusBadge(experiment.status),
        h("a", { class: "faint export-one", href: `/api/experiments/${experiment.id}/export?format=csv`, download: "", title: "This experiment's cycles and epochs as CSV" }, "CSV"),
        h("a", { class: "faint export-one", href: `/api/experiments/${experiment.id}/export?format=json`, download: "", title: "This experiment's cycles and epochs as JSON" }, "JSON"),
        h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${experiment.name}`, title: "Remove from the comparison", onclick: () => setIds(ids.filter((id) => id !== experiment.id)) }, "×"),
      ),
    ),
  );
}

function cell(value, label, metricName) {
  if (value === null || value === undefined) return h("td", { class: "num faint" }, "–");
  if (typeof value === "number") {
    let text;
    if (label.startsWith("validation metric")) text = metricName === "accuracy" ? `${(value * 100).toFixed(2)} %` : fmt.num(value, 4);
    else if (label.startsWith("speed-up")) text = `×${value.toFixed(2)}`;
    else text = Number.isInteger(value) ? fmt.int(value) : fmt.num(value);
    return h("td", { class: "num" }, text);
  }
  return h("td", { class: "num" }, value);
}

function settingCell(value) {
  if (value === null || value === undefined) return h("td", { class: "faint" }, "–");
  return h("td", {}, typeof value === "number" && !Number.isInteger(value) ? String(value) : typeof value === "number" ? fmt.int(value) : String(value));
}

/** Every spec setting side by side; rows where the experiments differ are highlighted (and can be shown alone). */
function settingsTable(settings, onlyDiffering) {
  const rows = settings.rows.filter((row) => row.setting !== "name" && (!onlyDiffering || row.differs));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data compact settings-table", id: "settings-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "setting"), settings.columns.map((column, position) => h("th", { style: { borderTop: `3px solid ${PALETTE[position % PALETTE.length]}` } }, column)))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((row) => h("tr", { class: row.differs ? "differs" : null, dataset: { setting: row.setting } }, h("td", { class: "nowrap" }, row.setting, row.differs ? h("span", { class: "sr-only" }, " (differs)") : null), row.values.map(settingCell)))
          : h("tr", {}, h("td", { colspan: String(settings.columns.length + 1), class: "faint" }, "Every setting is the same.")),
      ),
    ),
  );
}

function settingsCard(settings) {
  const body = h("div", { id: "settings-body" });
  const draw = (only) => replace(body, settingsTable(settings, only));
  const differing = settings.rows.filter((row) => row.differs && row.setting !== "name").length;
  draw(false);
  return h(
    "section",
    { class: "card", "aria-label": "Settings" },
    h(
      "div",
      { class: "card-head" },
      h("div", {}, h("h2", {}, "Settings"), h("div", { class: "hint", id: "settings-summary" }, `${differing} of ${settings.rows.length - 1} settings differ (highlighted)`)),
      h("div", { class: "chart-controls" }, segmented("Rows", [{ value: false, label: "All settings" }, { value: true, label: "Only differences" }], false, draw)),
    ),
    body,
  );
}

function compareTable(table, experiments) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data compact compare-table", id: "compare-table" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), table.columns.map((column, position) => h("th", { class: "num", style: { borderTop: `3px solid ${PALETTE[position % PALETTE.length]}` } }, column)))),
      h(
        "tbody",
        {},
        // "experiment id" and "name" are in the column headers already (the export keeps them).
        table.rows.filter((row) => row.label !== "experiment id" && row.label !== "name").map((row, index, rows) =>
          h(
            "tr",
            { class: [row.kind === "layer" ? "layer-row" : null, row.kind === "layer" && rows[index - 1]?.kind === "summary" ? "group-start" : null] },
            h("td", { class: "nowrap" }, row.label),
            row.values.map((value, position) => cell(value, row.label, experiments[position]?.metric_name)),
          ),
        ),
      ),
    ),
  );
}

function chartCard(id, title, hint, controls = null, wide = false) {
  const element = h("div", { id: `chart-${id}`, class: ["chart", "chart-loading"], role: "img", "aria-label": title }, "Loading chart…");
  const card = h(
    "section",
    { class: ["card", wide ? "wide" : null], "aria-label": title },
    h("div", { class: "card-head" }, h("div", {}, h("h2", {}, title), h("div", { class: "hint" }, hint)), controls ? h("div", { class: "chart-controls" }, controls) : null),
    h("div", { class: "card-body", style: { padding: "4px 8px 8px" } }, element),
  );
  return { card, element };
}

function figureUrl(name, options = {}) {
  const params = new URLSearchParams({ ids: ids.join(",") });
  for (const [key, value] of Object.entries(options)) if (value) params.set(key, value === true ? "true" : String(value));
  return `/api/compare/figures/${name}?${params}`;
}

function paretoControls(experiments) {
  const redraw = () => Promise.all([charts.flops.refresh(), charts.latency.refresh()]);
  const metrics = [...new Set(experiments.map((experiment) => experiment.metric_name).filter(Boolean))];
  if (!metrics.includes(pareto.metric)) pareto.metric = metrics[0] ?? null;
  return [
    metrics.length > 1
      ? h("label", {}, "Metric", h("select", { id: "pareto-metric", onchange: (event) => { pareto.metric = event.target.value; redraw(); } }, metrics.map((metric) => h("option", { value: metric, selected: metric === pareto.metric }, metric))))
      : null,
    segmented("Points", [{ value: false, label: "Every cycle" }, { value: true, label: "Final only" }], pareto.final_only, (value) => { pareto.final_only = value; redraw(); }),
    segmented("Cost axis", [{ value: false, label: "Linear" }, { value: true, label: "Log" }], pareto.log, (value) => { pareto.log = value; redraw(); }),
  ];
}

function exportLinks() {
  const disabled = !ids.length;
  return [
    h("a", { class: "btn", id: "export-csv", href: disabled ? null : `/api/compare/export?${idsQuery()}&format=csv`, "aria-disabled": String(disabled), download: "" }, "Export CSV"),
    h("a", { class: "btn", id: "export-json", href: disabled ? null : `/api/compare/export?${idsQuery()}&format=json`, "aria-disabled": String(disabled), download: "" }, "Export JSON"),
  ];
}

async function load() {
  const root = byId("compare-root");
  replace(byId("compare-actions"), exportLinks());
  if (!ids.length) {
    replace(
      root,
      h(
        "section",
        { class: "card" },
        emptyState(
          "Nothing to compare yet",
          "Select experiments in the list and press Compare, or add experiments by id here.",
          h("a", { class: "btn btn-primary", href: "/" }, "Choose experiments"),
          addForm(),
        ),
      ),
    );
    markReady("compare");
    return;
  }
  // the chart on the first screen (below the settings) is asked for with the data, not after it
  prefetchFigure(figureUrl("parcoords"));
  let comparison;
  let settings;
  try {
    [comparison, settings] = await Promise.all([api.get(`/api/compare?${idsQuery()}`), api.get(`/api/compare/settings?${idsQuery()}`)]);
  } catch (error) {
    const text = error instanceof ApiError ? error.message : String(error);
    replace(root, h("section", { class: "card" }, h("div", { class: "card-body" }, notice("error", `Could not compare: ${text}`), h("div", { style: { marginTop: "12px" } }, h("button", { type: "button", class: "btn", onclick: () => setIds([]) }, "Start over")))));
    markReady("compare");
    return;
  }
  document.title = `Compare ${comparison.experiments.length} experiments · prunelab`;
  const widths = chartCard("widths", "Units kept per layer", "Colour: experiment · dash: layer", null, true);
  const size = comparison.experiments.length > 8 ? "taller" : "tall";
  widths.element.classList.add(size);
  const flops = chartCard("pareto-flops", "Metric vs FLOPs", "Validation metric of every accepted cycle; the dashed staircase is the Pareto front", paretoControls(comparison.experiments));
  const latency = chartCard("pareto-latency", "Metric vs TFLite latency", "Median latency of the most common TFLite format. Latencies of different experiments are not paired (each run timed its own models, on its own worker and moment): compare their speed-ups, not absolute times");
  const parcoords = chartCard("parcoords", "Settings vs outcome", "One line per experiment through the settings that differ, then final metric, FLOPs and parameters; drag along an axis to filter", null, true);
  const loss = chartCard("loss", "Loss per epoch", "Solid: validation · dotted: train; cycles one after another", null, true);
  loss.element.classList.add(size);
  replace(
    root,
    h(
      "section",
      { class: "card" },
      h("div", { class: "card-head" }, h("div", {}, h("h2", {}, `${comparison.experiments.length} experiments`), h("div", { class: "hint" }, `At most ${MAX_COMPARED}; remove one with ×`)), addForm()),
      h("div", { class: "card-body" }, chips(comparison.experiments)),
    ),
    settingsCard(settings),
    h("div", { class: "grid" }, parcoords.card),
    h("div", { class: "section-title" }, h("h2", {}, "Pruning")),
    h("div", { class: "grid" }, widths.card, flops.card, latency.card),
    h("div", { class: "section-title" }, h("h2", {}, "Training")),
    h("div", { class: "grid" }, loss.card),
    h("div", { class: "section-title" }, h("h2", {}, "Final architectures"), h("span", { class: "hint" }, "Headline numbers and speed-ups, then every layer's width in the final model")),
    h("section", { class: "card" }, comparison.table.rows.length ? compareTable(comparison.table, comparison.experiments) : emptyState("No cycles yet", "")),
  );
  charts.widths = new Chart(widths.element, () => figureUrl("widths"));
  charts.flops = new Chart(flops.element, () => figureUrl("pareto-flops", pareto));
  charts.latency = new Chart(latency.element, () => figureUrl("pareto-latency", pareto));
  charts.parcoords = new Chart(parcoords.element, () => figureUrl("parcoords"));
  charts.loss = new Chart(loss.element, () => figureUrl("loss"));
  await Promise.all(Object.values(charts).map((chart) => drawWhenVisible(chart.element, () => chart.refresh())));
  markReady("compare");
}

markNav();
load();
