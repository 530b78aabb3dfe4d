// An experiment spec in readable form: the model's layers as a table, the recipe as labelled values.

import { h } from "./dom.js";
import * as fmt from "./format.js";
import { criterionLabel } from "./criteria.js";


function show(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.map(show).join(", ") : "–";
  if (typeof value === "number") return fmt.num(value, 6);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function kv(pairs) {
  return h(
    "dl",
    { class: "kv" },
    pairs.filter(([, value]) => value !== undefined).flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, show(value))]),
  );
}

function block(title, ...content) {
  return h("div", { class: "spec-block" }, h("h3", {}, title), content);
}

function pair(value) {
  return Array.isArray(value) ? value.join("×") : show(value);
}

/** The layers a layer reads when that is not just the layer before it (a graph's joins and branches). */
export function branchInputs(layers, index) {
  const inputs = layers[index].inputs;
  if (!Array.isArray(inputs)) return null;
  const previous = index === 0 ? "input" : layers[index - 1].name;
  return inputs.length === 1 && inputs[0] === previous ? null : inputs;
}

function layerDetail(layer, inputs = null) {
  const parts = [];
  if (inputs) parts.push(`inputs ${inputs.join(", ")}`);
  if (layer.kernel_size) parts.push(`kernel ${pair(layer.kernel_size)}`);
  if (layer.pool_size) parts.push(`pool ${pair(layer.pool_size)}`);
  if (layer.strides && pair(layer.strides) !== "1×1") parts.push(`stride ${pair(layer.strides)}`);
  if (layer.padding && layer.padding !== "valid") parts.push(`padding ${layer.padding}`);
  if (layer.rate !== undefined) parts.push(`rate ${layer.rate}`);
  if (layer.use_bias === false) parts.push("no bias");
  return parts.join(", ");
}

/** A narrow table for the new-experiment preview: layer, width, parameters and FLOPs. */
export function costTable(model, cost) {
  const costs = new Map(cost.layers.map((layer) => [layer.name, layer]));
  const prunable = new Set(cost.prunable_layers);
  return h(
    "table",
    { class: "data compact layers-preview", id: "preview-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Layer"), h("th", { class: "num" }, "Width"), h("th", { class: "num" }, "Params"), h("th", { class: "num" }, "FLOPs"))),
    h(
      "tbody",
      {},
      model.layers.map((layer, index) => {
        const own = costs.get(layer.name);
        const width = layer.units ?? layer.filters;
        const inputs = branchInputs(model.layers, index);
        const kind = prunable.has(layer.name) ? `${layer.type} · prunable` : layer.type;
        return h(
          "tr",
          {},
          h("td", {}, h("span", { class: "mono" }, layer.name), h("div", { class: "faint", style: { fontSize: "11.5px" } }, inputs ? `${kind} · ← ${inputs.join(", ")}` : kind)),
          h("td", { class: "num" }, width !== undefined ? fmt.int(width) : ""),
          h("td", { class: "num" }, own ? fmt.compact(own.params) : ""),
          h("td", { class: "num" }, own ? fmt.compact(own.flops) : ""),
        );
      }),
    ),
  );
}

/** The model's layers with widths and, when `cost` is given, output shapes, parameters and FLOPs. */
export function layersTable(model, cost = null) {
  const costs = new Map((cost?.layers || []).map((layer) => [layer.name, layer]));
  const prunable = new Set(cost?.prunable_layers || []);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data compact layers-preview" },
      h(
        "thead",
        {},
        h("tr", {}, ["#", "Layer", "Type", "Width", "Activation", "Details", cost ? "Output" : null, cost ? "Params" : null, cost ? "FLOPs" : null].filter(Boolean).map((label, i) => h("th", { class: i === 3 || i >= 6 ? "num" : null }, label))),
      ),
      h(
        "tbody",
        {},
        h("tr", {}, h("td", { class: "faint" }, ""), h("td", { class: "mono" }, "input"), h("td", { class: "muted" }, "input"), h("td", {}, ""), h("td", {}, ""), h("td", { class: "muted" }, `shape ${pair(model.input_shape)}`), cost ? [h("td", { class: "num" }, pair(model.input_shape)), h("td", {}, ""), h("td", {}, "")] : null),
        (model.layers || []).map((layer, index) => {
          const own = costs.get(layer.name);
          const width = layer.units ?? layer.filters;
          return h(
            "tr",
            {},
            h("td", { class: "faint" }, String(index)),
            h("td", { class: "mono" }, layer.name || `${layer.type}_${index}`, prunable.has(layer.name) ? h("span", { class: "chip", style: { marginLeft: "6px" }, title: "its units can be removed" }, "prunable") : null),
            h("td", { class: "muted" }, layer.type),
            h("td", { class: "num" }, width !== undefined ? fmt.int(width) : ""),
            h("td", {}, layer.activation && layer.activation !== "linear" ? layer.activation : layer.type === "activation" ? layer.activation : ""),
            h("td", { class: "muted" }, layerDetail(layer, branchInputs(model.layers, index))),
            cost ? [h("td", { class: "num" }, own ? pair(own.output_shape) : ""), h("td", { class: "num" }, own ? fmt.int(own.params) : ""), h("td", { class: "num" }, own ? fmt.int(own.flops) : "")] : null,
          );
        }),
      ),
    ),
  );
}

function criterionText(criterion) {
  if (!criterion) return "–";
  const type = typeof criterion === "string" ? criterion : criterion.type;
  const name = criterionLabel(type);
  const parameters = typeof criterion === "object" ? Object.entries(criterion).filter(([key]) => key !== "type") : [];
  return [name, ...parameters.map(([key, value]) => `${key} = ${value}`)].join(", ");
}

function rulesText(rules) {
  if (!rules?.length) return undefined;
  return rules
    .map((rule) => `${(rule.layers || []).join(", ")}: ${rule.criterion ? criterionText(rule.criterion) : "default criterion"}${rule.max_fraction != null ? `, max fraction ${rule.max_fraction}` : ""}`)
    .join("; ");
}

function targetText(target) {
  if (!target) return undefined;
  return Object.entries(target)
    .filter(([, value]) => value != null)
    .map(([kind, value]) => `${show(value * 100)} % of cycle 0's ${kind === "flops" ? "FLOPs" : "parameters"}`)
    .join(", ");
}

/** The whole spec: model table, dataset, training, pruning and benchmark, with the raw JSON below. */
export function specView(spec) {
  const model = spec.model || {};
  const dataset = spec.dataset || {};
  const training = spec.training || {};
  const pruning = spec.pruning || {};
  const benchmark = spec.benchmark || {};
  const datasetPairs = Object.entries(dataset).filter(([key]) => key !== "name");
  return h(
    "div",
    {},
    h("div", { class: "spec-block", style: { marginBottom: "16px" } }, h("h3", {}, "Model"), typeof model === "object" && model.layers ? layersTable(model) : h("div", {}, show(model))),
    h(
      "div",
      { class: "spec-grid" },
      block("Dataset", kv([["name", dataset.name], ...datasetPairs.map(([key, value]) => [key.replaceAll("_", " "), value])])),
      block(
        "Training",
        kv([
          ["optimizer", training.optimizer],
          ["learning rate", training.learning_rate],
          ["schedule", training.lr_schedule],
          ["batch size", training.batch_size],
          ["epochs", training.epochs],
          ["first cycle epochs", training.first_epochs ?? training.epochs],
          ["loss", training.loss],
          ["head", training.loss === "crossentropy" ? training.head : undefined],
          ["L1 / L2", `${show(training.l1)} / ${show(training.l2)}`],
          ["activity L1 / L2", `${show(training.activity_l1)} / ${show(training.activity_l2)}`],
          ["group lasso", training.group_lasso],
          ["L1 on BN γ", training.bn_l1],
        ]),
      ),
      block(
        "Pruning",
        kv([
          ["criterion", criterionText(pruning.criterion)],
          ["rules", rulesText(pruning.rules)],
          ["cost target", targetText(pruning.target)],
          ["group score", pruning.group_score],
          ["layers", pruning.layers ?? "all prunable"],
          ["layers per cycle", pruning.layers_per_cycle ?? "all"],
          ["max fraction", pruning.max_fraction],
          ["min units", pruning.min_units],
          ["max cycles", pruning.max_cycles],
          ["tolerance", pruning.tolerance ?? "none"],
          ["back-off", pruning.backoff?.retries ? `${pruning.backoff.retries} retries, step × ${pruning.backoff.factor}` : undefined],
          ["fold constants", pruning.fold_constant],
          ["merge linear", pruning.merge_linear],
          ["merge tolerance", pruning.merge_linear ? pruning.merge_tolerance : undefined],
          ["distortion", pruning.distortion],
          ["finetune", pruning.finetune],
        ]),
      ),
      block(
        "Benchmark and seed",
        kv([
          ["seed", spec.seed],
          ["TFLite cycles", benchmark.cycles],
          ["formats", benchmark.formats],
          ["runs", benchmark.runs],
          ["threads", benchmark.threads],
        ]),
      ),
    ),
    h("details", { class: "raw" }, h("summary", {}, "The spec as JSON"), h("pre", {}, JSON.stringify(spec, null, 2))),
  );
}
