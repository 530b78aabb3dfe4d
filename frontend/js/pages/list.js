// The experiment list: server-side filters, sort and pages (GET /api/experiments), live progress,
// a selection that survives paging, and "Compare" for 2 to 20 selected experiments.

import { api, ApiError, query } from "../api.js";
import { byId, debounce, h, markReady, replace } from "../dom.js";
import { cycleProgressLabel, emptyState, isLive, markNav, notice, progressBar, queueState, statusBadge, tagChips } from "../components.js";
import * as fmt from "../format.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const MAX_COMPARED = 20;
const POLL_MS = 2500;
const DEFAULTS = { q: "", status: [], tag: "", owner: "", sort: "created", order: "desc", limit: 50, offset: 0 };

// column: [key, label, sort key or null, class]. The metric columns sort best first (descending) in each
// metric's own direction (the server groups by metric: accuracy high-is-good, RMSE low-is-good).
const METRIC_SORTS = ["final_metric", "best_metric"];
const COLUMNS = [
  ["select", "", null, ""],
  ["name", "Name", "name", ""],
  ["status", "Status", "status", ""],
  ["tags", "Tags", null, ""],
  ["owner", "Owner", "owner", ""],
  ["created", "Created", "created", ""],
  ["cycles", "Cycles", "cycles_done", "num"],
  ["widths", "Final widths", null, ""],
  ["params", "Params", "final_params", "num"],
  ["flops", "FLOPs", "final_flops", "num"],
  ["metric", "Final metric", "final_metric", "num"],
  ["best", "Best so far", "best_metric", "num"],
  ["speedup", "Speed-up", null, "num"],
];

const state = readState();
const selected = new Map(); // id -> name
let page = null;
let pollTimer = null;
let requestSerial = 0;

function readState() {
  const params = new URLSearchParams(location.search);
  const limit = Number(params.get("limit"));
  const offset = Number(params.get("offset"));
  return {
    q: params.get("q") || "",
    status: params.getAll("status").filter((one) => STATUSES.includes(one)),
    tag: params.get("tag") || "",
    owner: params.get("owner") || "",
    sort: params.get("sort") || DEFAULTS.sort,
    order: params.get("order") === "asc" ? "asc" : "desc",
    limit: [25, 50, 100, 200].includes(limit) ? limit : DEFAULTS.limit,
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

function writeState() {
  const params = {};
  for (const [key, value] of Object.entries(state)) {
    const fallback = DEFAULTS[key];
    if (Array.isArray(value) ? value.length : value !== fallback) params[key] = value;
  }
  history.replaceState(null, "", `${location.pathname}${query(params)}`);
}

function filtersActive() {
  return Boolean(state.q || state.status.length || state.tag || state.owner);
}

// ---------------------------------------------------------------------------------------- filters

function buildFilters() {
  byId("filter-q").value = state.q;
  byId("filter-tag").value = state.tag;
  byId("filter-owner").value = state.owner;
  replace(
    byId("filter-status"),
    STATUSES.map((status) =>
      h(
        "label",
        {},
        h("input", {
          type: "checkbox",
          name: "status",
          value: status,
          checked: state.status.includes(status),
          onchange: (event) => {
            state.status = event.target.checked
              ? [...state.status, status]
              : state.status.filter((one) => one !== status);
            refilter();
          },
        }),
        status[0].toUpperCase() + status.slice(1),
      ),
    ),
  );
  const typed = debounce(() => {
    state.q = byId("filter-q").value.trim();
    state.tag = byId("filter-tag").value.trim();
    state.owner = byId("filter-owner").value.trim();
    refilter();
  }, 250);
  for (const id of ["filter-q", "filter-tag", "filter-owner"]) byId(id).addEventListener("input", typed);
  byId("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    typed.cancel();
    state.q = byId("filter-q").value.trim();
    state.tag = byId("filter-tag").value.trim();
    state.owner = byId("filter-owner").value.trim();
    refilter();
  });
  byId("filters-clear").addEventListener("click", () => {
    Object.assign(state, { q: "", status: [], tag: "", owner: "", offset: 0 });
    buildFilters();
    load();
  });
}

function setFilter(key, value) {
  state[key] = value;
  byId(`filter-${key}`).value = value;
  refilter();
}

function refilter() {
  state.offset = 0;
  load();
}

// ---------------------------------------------------------------------------------------- table

function buildHead() {
  replace(
    byId("experiments-head"),
    COLUMNS.map(([key, label, sortKey, cls]) => {
      if (key === "select") {
        return h(
          "th",
          { scope: "col", style: { width: "36px" } },
          h("input", { type: "checkbox", id: "select-page", "aria-label": "Select every experiment on this page", onchange: selectPage }),
        );
      }
      if (!sortKey) return h("th", { scope: "col", class: cls }, label);
      const active = state.sort === sortKey;
      return h(
        "th",
        { scope: "col", class: ["sortable", cls], "aria-sort": active ? (state.order === "asc" ? "ascending" : "descending") : null },
        h(
          "button",
          { type: "button", title: METRIC_SORTS.includes(sortKey) ? `Sort by ${label.toLowerCase()}: ▼ best first, ▲ worst first, within each metric` : `Sort by ${label.toLowerCase()}`, onclick: () => sortBy(sortKey) },
          label,
          h("span", { class: "arrow", "aria-hidden": "true" }, active && state.order === "asc" ? "▲" : "▼"),
        ),
      );
    }),
  );
}

function sortBy(key) {
  if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
  else {
    state.sort = key;
    state.order = key === "name" || key === "owner" || key === "status" ? "asc" : "desc";
  }
  state.offset = 0;
  buildHead();
  load();
}

function reductionCell(before, after) {
  const change = fmt.reduction(before, after);
  if (!change) return h("td", { class: "num faint" }, Number.isFinite(after) ? fmt.compact(after) : "–");
  return h(
    "td",
    { class: "num", title: change.title },
    h(
      "div",
      { class: "reduction" },
      h("span", { class: change.percent > 0 ? "good" : null }, change.text),
      h("span", { class: "factor" }, `${fmt.compact(after)} ${change.factor}`),
    ),
  );
}

function statusCell(item) {
  const parts = [statusBadge(item.status, item.cancel_requested)];
  if (item.status === "running") {
    parts.push(progressBar(item.progress, `progress of ${item.name}`));
    parts.push(cycleProgressLabel(item));
  } else if (item.status === "queued") {
    parts.push(h("span", { class: "progress-label queue-state" }, queueState(item)));
  }
  return h("td", {}, h("div", { class: "status-cell" }, parts));
}

function metricCell(value, item, title) {
  return h(
    "td",
    { class: "num", title },
    fmt.metric(value, item.metric_name),
    item.metric_name ? h("div", { class: "faint", style: { fontSize: "11.5px" } }, item.metric_name) : null,
  );
}

function row(item) {
  const created = fmt.relativeTime(item.created_at);
  const checked = selected.has(item.id);
  const speedup = Number.isFinite(item.latency_speedup) ? `×${item.latency_speedup.toFixed(2)}` : "–";
  return h(
    "tr",
    { class: checked ? "selected" : null, dataset: { id: String(item.id) } },
    h(
      "td",
      {},
      h("input", {
        type: "checkbox",
        checked,
        "aria-label": `Select ${item.name}`,
        onchange: (event) => toggle(item, event.target.checked, event.target.closest("tr")),
      }),
    ),
    h("td", { class: "name-cell" }, h("a", { href: `/experiments/${item.id}` }, item.name), h("span", { class: "id" }, `#${item.id}`)),
    statusCell(item),
    h("td", {}, tagChips(item.tags, (tag) => setFilter("tag", tag))),
    h("td", { class: "nowrap" }, h("button", { type: "button", class: "btn-link btn", title: "Show this owner's experiments", onclick: () => setFilter("owner", item.owner) }, item.owner)),
    h("td", { class: "nowrap", title: created.title }, created.text),
    h("td", { class: "num" }, fmt.int(item.cycles_done)),
    h("td", { class: "widths-cell" }, fmt.widths(item.final_widths)),
    reductionCell(item.initial_params, item.final_params),
    reductionCell(item.initial_flops, item.final_flops),
    metricCell(item.final_metric, item, "validation metric of the final (kept) model, beside its params and FLOPs"),
    metricCell(item.best_metric, item, "best validation metric of any accepted cycle so far (may not be the final model's)"),
    h("td", { class: "num" }, speedup),
  );
}

function render() {
  const body = byId("experiments-body");
  const items = page.items;
  replace(body, items.map(row));
  const empty = byId("list-empty");
  if (!items.length) {
    if (filtersActive()) {
      replace(empty, emptyState("No experiments match these filters", "Change the search or the status, tag and owner filters.", h("button", { type: "button", class: "btn", onclick: () => byId("filters-clear").click() }, "Clear filters")));
    } else if (page.total === 0) {
      replace(empty, emptyState("No experiments yet", "Describe a model, a dataset and a pruning recipe, and a worker will trim it cycle by cycle.", h("a", { class: "btn btn-primary", href: "/new" }, "Create your first experiment")));
    } else {
      replace(empty, emptyState("This page is empty", "There are fewer experiments than this page starts at.", h("button", { type: "button", class: "btn", onclick: () => { state.offset = 0; load(); } }, "Go to the first page")));
    }
  } else replace(empty);
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + items.length;
  byId("pager-range").textContent = page.total ? `${fmt.int(first)}–${fmt.int(last)} of ${fmt.int(page.total)}` : "0 experiments";
  const noun = page.total === 1 ? "experiment" : "experiments";
  byId("list-subtitle").textContent = filtersActive()
    ? `${fmt.int(page.total)} matching ${noun}`
    : `${fmt.int(page.total)} ${noun} shared by the team`;
  byId("page-prev").disabled = page.offset <= 0;
  byId("page-next").disabled = last >= page.total;
  byId("page-size").value = String(state.limit);
  byId("filters-clear").hidden = !filtersActive();
  updateSelection();
}

// ---------------------------------------------------------------------------------------- selection

function toggle(item, on, tr) {
  if (on) selected.set(item.id, item.name);
  else selected.delete(item.id);
  tr?.classList.toggle("selected", on);
  updateSelection();
}

function selectPage(event) {
  for (const item of page?.items || []) {
    if (event.target.checked) selected.set(item.id, item.name);
    else selected.delete(item.id);
  }
  render();
}

function updateSelection() {
  const count = selected.size;
  byId("selection-bar").hidden = count === 0;
  byId("selection-count").textContent = `${count} selected`;
  const link = byId("compare-selected");
  const ok = count >= 1 && count <= MAX_COMPARED;
  byId("selection-hint").textContent = count > MAX_COMPARED ? `At most ${MAX_COMPARED} experiments can be compared.` : count === 1 ? "Select one more to compare." : "";
  link.setAttribute("aria-disabled", String(!ok || count < 2));
  link.href = `/compare?ids=${[...selected.keys()].join(",")}`;
  const pageBox = document.getElementById("select-page");
  if (pageBox && page) {
    const onPage = page.items.filter((item) => selected.has(item.id)).length;
    pageBox.checked = onPage > 0 && onPage === page.items.length;
    pageBox.indeterminate = onPage > 0 && onPage < page.items.length;
  }
}

// ---------------------------------------------------------------------------------------- loading

function skeleton() {
  const body = byId("experiments-body");
  if (body.children.length) return;
  replace(body, Array.from({ length: 8 }, () => h("tr", { class: "skeleton-row" }, COLUMNS.map(() => h("td", {}, h("span", { class: "skeleton" }))))));
}

async function load({ quiet = false } = {}) {
  const serial = ++requestSerial;
  writeState();
  if (!quiet) skeleton();
  clearTimeout(pollTimer);
  try {
    const next = await api.get(`/api/experiments${query(state)}`);
    if (serial !== requestSerial) return;
    page = next;
    render();
    if (page.items.some((item) => isLive(item.status))) pollTimer = setTimeout(() => load({ quiet: true }), POLL_MS);
  } catch (error) {
    if (serial !== requestSerial) return;
    if (quiet) {
      pollTimer = setTimeout(() => load({ quiet: true }), POLL_MS * 2);
      return;
    }
    replace(byId("experiments-body"));
    const message = error instanceof ApiError ? error.message : String(error);
    replace(byId("list-empty"), h("div", { class: "card-body" }, notice("error", `Could not load experiments: ${message}`)));
  } finally {
    if (serial === requestSerial) markReady("list");
  }
}

function main() {
  load(); // first: the rows are asked for before anything else is built (they render when they arrive)
  markNav();
  buildFilters();
  buildHead();
  byId("page-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - state.limit);
    load();
  });
  byId("page-next").addEventListener("click", () => {
    state.offset += state.limit;
    load();
  });
  byId("page-size").addEventListener("change", (event) => {
    state.limit = Number(event.target.value);
    state.offset = 0;
    load();
  });
  byId("selection-clear").addEventListener("click", () => {
    selected.clear();
    render();
  });
  byId("compare-selected").addEventListener("click", (event) => {
    if (event.currentTarget.getAttribute("aria-disabled") === "true") event.preventDefault();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && page?.items.some((item) => isLive(item.status))) load({ quiet: true });
  });
}

main();
