// The architecture diff of the experiment page (GET /api/experiments/{id}/architecture): every layer
// with its inputs, group and widths before → after, the channel groups of a graph model, and the model
// drawn as a graph (a Plotly figure the server builds).

import { h } from "./dom.js";
import * as fmt from "./format.js";
import { draw, drawWhenVisible } from "./plots.js";

const cell = (value) => (value === null || value === undefined ? "–" : fmt.int(value));
const change = (before, after) => (after === null && before !== null ? cell(before) : `${cell(before)} → ${cell(after)}`);

/** True when some layer reads anything but the layer before it (a graph rather than a stack). */
export function isGraph(layers) {
  return layers.some((layer, index) => {
    const inputs = layer.inputs || [];
    const previous = index === 0 ? "input" : layers[index - 1].name;
    return inputs.length !== 1 || inputs[0] !== previous;
  });
}

/**
 * Layer by layer: name, type, inputs, group, width (a layer without channels of its own shows its
 * group's), units removed, parameters, FLOPs and what changed.
 */
export function layersDiffTable(diff) {
  const graph = isGraph(diff.layers);
  const labels = ["Layer", "Type", "Inputs", graph ? "Group" : null, "Width", "Removed", "Params", "FLOPs", "Change"].filter(Boolean);
  const numeric = new Set(["Width", "Removed", "Params", "FLOPs"]);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data compact", id: "diff-table" },
      h("thead", {}, h("tr", {}, labels.map((label) => h("th", { class: numeric.has(label) ? "num" : null }, label)))),
      h(
        "tbody",
        {},
        diff.layers.map((layer) =>
          h(
            "tr",
            { dataset: { layer: layer.name } },
            h("td", { class: "mono" }, layer.name),
            h("td", { class: "muted" }, layer.type || ""),
            h("td", { class: "mono diff-inputs" }, (layer.inputs || []).join(", ")),
            graph ? h("td", { class: "mono" }, (layer.groups || []).join(", ")) : null,
            h("td", { class: "num" }, `${cell(layer.width_before)} → ${cell(layer.width_after)}`),
            h("td", { class: "num" }, layer.units_removed ? fmt.int(layer.units_removed) : ""),
            h("td", { class: "num" }, change(layer.params_before, layer.params_after)),
            h("td", { class: "num" }, change(layer.flops_before, layer.flops_after)),
            h("td", { class: `change-${layer.change}` }, layer.change),
          ),
        ),
      ),
    ),
  );
}

/** The channel groups: producers, width before → after, removed channels, and why a fixed one is fixed. */
export function groupsDiffTable(groups) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data compact", id: "diff-groups" },
      h("thead", {}, h("tr", {}, ["Group", "Producers", "Width", "Removed", "Can shrink"].map((label) => h("th", { class: label === "Width" || label === "Removed" ? "num" : null }, label)))),
      h(
        "tbody",
        {},
        groups.map((group) => {
          const removed = group.width_before !== null && group.width_after !== null ? group.width_before - group.width_after : null;
          return h(
            "tr",
            { dataset: { group: group.name } },
            h("td", { class: "mono" }, group.name),
            h("td", { class: "mono" }, group.producers.join(", ")),
            h("td", { class: "num" }, `${cell(group.width_before)} → ${cell(group.width_after)}`),
            h("td", { class: "num" }, removed ? fmt.int(removed) : ""),
            h("td", { class: group.fixed ? "group-reason" : null }, group.fixed ? `fixed: ${group.fixed}` : "prunable"),
          );
        }),
      ),
    ),
  );
}

/**
 * The drawn graph: a chart element as tall as the figure asks (in a frame that scrolls past 720 px, so
 * a deep model does not push the page's next sections far down), drawn when it scrolls into view or
 * once the charts on the first screen are drawn (it sits below them).
 */
export function graphChart(figure) {
  const element = h("div", { class: "chart", id: "diff-graph", role: "img", "aria-label": "The model as a graph: layers and their inputs" });
  element.style.height = `${Math.max(figure?.layout?.height ?? 400, 200)}px`;
  if (figure) {
    drawWhenVisible(element, () => draw(element, figure))
      .then((drawn) => {
        if (drawn !== undefined) element.dataset.loaded = "true";
      })
      .catch((error) => {
        element.textContent = `Could not draw the graph: ${error.message}`;
      });
  }
  return h("div", { class: "diff-graph-frame", style: { maxHeight: "720px", overflowY: "auto" } }, element);
}

/** The whole diff: groups (graph models only), the layer table, and the drawn graph. */
export function architectureView(diff) {
  const graph = isGraph(diff.layers);
  return h(
    "div",
    { id: "diff-view" },
    graph && diff.groups?.length ? [h("h3", { class: "diff-heading" }, "Channel groups"), groupsDiffTable(diff.groups), h("h3", { class: "diff-heading" }, "Layers")] : null,
    layersDiffTable(diff),
    diff.graph ? [h("h3", { class: "diff-heading" }, "Graph"), graphChart(diff.graph)] : null,
  );
}
