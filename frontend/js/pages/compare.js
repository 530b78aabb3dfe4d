// Up to 20 experiments side by side: widths per layer vs cycle, metric vs FLOPs and vs latency with
// the Pareto front, loss curves, final architectures; CSV and JSON export.

import { api, ApiError } from "../api.js";
import { byId, h, markReady, replace } from "../dom.js";
import { emptyState, markNav, notice, segmented, statusBadge } from "../components.js";
import * as fmt from "../format.js";
import { Chart, drawWhenVisible } from "../plots.js";

const MAX_COMPARED = 20;
// The figures' colours (backend/figures/common.py PALETTE), so chips match the traces.
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

let ids = parseIds(new URLSearchParams(location.search).get("ids"));
const pareto = { final_only: false, log: false };
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
        h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${experiment.name}`, title: "Remove from the comparison", onclick: () => setIds(ids.filter((id) => id !== experiment.id)) }, "×"),
      ),
    ),
  );
}

function cell(value, label) {
  if (value === null || value === undefined) return h("td", { class: "num faint" }, "–");
  if (typeof value === "number") {
    const text = label.startsWith("validation metric") ? fmt.num(value, 4) : Number.isInteger(value) ? fmt.int(value) : fmt.num(value);
    return h("td", { class: "num" }, text);
  }
  return h("td", { class: "num" }, value);
}

function compareTable(table) {
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
            row.values.map((value) => cell(value, row.label)),
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
  for (const [key, value] of Object.entries(options)) if (value) params.set(key, "true");
  return `/api/compare/figures/${name}?${params}`;
}

function paretoControls() {
  const redraw = () => Promise.all([charts.flops.refresh(), charts.latency.refresh()]);
  return [
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
  let comparison;
  try {
    comparison = await api.get(`/api/compare?${idsQuery()}`);
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
  const flops = chartCard("pareto-flops", "Metric vs FLOPs", "Validation metric of every accepted cycle; the dashed staircase is the Pareto front", paretoControls());
  const latency = chartCard("pareto-latency", "Metric vs TFLite latency", "Median latency of the most common TFLite format");
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
    h("div", { class: "section-title" }, h("h2", {}, "Pruning")),
    h("div", { class: "grid" }, widths.card, flops.card, latency.card),
    h("div", { class: "section-title" }, h("h2", {}, "Training")),
    h("div", { class: "grid" }, loss.card),
    h("div", { class: "section-title" }, h("h2", {}, "Final architectures"), h("span", { class: "hint" }, "Headline numbers, then every layer's width in the final model")),
    h("section", { class: "card" }, comparison.table.rows.length ? compareTable(comparison.table) : emptyState("No cycles yet", "")),
  );
  charts.widths = new Chart(widths.element, () => figureUrl("widths"));
  charts.flops = new Chart(flops.element, () => figureUrl("pareto-flops", pareto));
  charts.latency = new Chart(latency.element, () => figureUrl("pareto-latency", pareto));
  charts.loss = new Chart(loss.element, () => figureUrl("loss"));
  await Promise.all(Object.values(charts).map((chart) => drawWhenVisible(chart.element, () => chart.refresh())));
  markReady("compare");
}

markNav();
load();
