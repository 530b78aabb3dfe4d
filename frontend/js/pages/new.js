// New experiment: a form over presets and recipe options, or a YAML/JSON spec pasted or uploaded
// (parsed by the server), with a live parameters/FLOPs preview and errors beside their fields. The
// form can start from a recipe (examples/*.yaml, GET /api/recipes) or from an experiment's spec
// (/new?from=ID, the experiment page's Clone button).

import { api, ApiError } from "../api.js";
import { byId, debounce, h, markReady, replace } from "../dom.js";
import { markNav, notice, stat } from "../components.js";
import * as fmt from "../format.js";
import { costTable } from "../spec-view.js";
import { criterionOptions, loadCriterionLabels } from "../criteria.js";
import { showGroups } from "../groups.js";
import { applyUploads, loadUploads, selectUploads, uploadSection } from "../uploads.js";

// ---------------------------------------------------------------------------------------- fields
// Each field: path in the request ("spec.training.epochs"), label, kind, default, options, help, when.

const OPTIMIZERS = ["adam", "sgd", "momentum", "rmsprop"];
const FORMATS = ["float32", "float16", "int8_dynamic", "int8_full"];
// What a preset is usually trained on; applied when the preset changes.
const PRESET_RECIPES = {
  "sum-mlp": { dataset: "sum", target: "labels", loss: "mse" },
  "lenet-300-100": { dataset: "mnist", target: "labels", loss: "crossentropy" },
  "lenet-5": { dataset: "mnist", target: "labels", loss: "crossentropy" },
  "mnist-autoencoder": { dataset: "mnist", target: "input", loss: "mse" },
  "resnet-mini": { dataset: "mnist", target: "labels", loss: "crossentropy" },
  "mobilenet-v2-mini": { dataset: "mnist", target: "labels", loss: "crossentropy" },
};

const v = (path) => readField(path);
const isDataset = (...names) => () => names.includes(v("spec.dataset.name"));
const criterionIs = (...types) => () => types.includes(v("spec.pruning.criterion.type"));

const SECTIONS = [
  {
    title: "Experiment",
    fields: [
      { path: "spec.name", label: "Name", kind: "text", value: "", help: "Shown in the list; any text", span: 2, placeholder: "e.g. lenet300-apoz-k1" },
      { path: "spec.seed", label: "Seed", kind: "int", value: 0, help: "Data, weights, shuffling and noise follow from it" },
    ],
  },
  {
    title: "Model",
    fields: [{ path: "spec.model", label: "Preset", kind: "preset", value: "sum-mlp", span: 2 }],
  },
  {
    title: "Dataset",
    fields: [
      { path: "spec.dataset.name", label: "Dataset", kind: "select", value: "sum", options: [["sum", "sum: generated x₁ + x₂"], ["mnist", "MNIST"], ["fashion-mnist", "Fashion-MNIST"], ["npz", "Your .npz file"]] },
      { path: "spec.dataset.path", label: "File path", kind: "text", value: "", when: isDataset("npz"), help: "On the worker: x_train, y_train, x_test, y_test", span: 2 },
      { path: "spec.dataset.target", label: "Target", kind: "select", value: "labels", options: [["labels", "labels (classify)"], ["input", "input (reconstruct)"], ["values", "values (regress)"]], when: isDataset("mnist", "fashion-mnist", "npz") },
      { path: "spec.dataset.train_samples", label: "Training examples", kind: "int", value: "", help: "Empty: the dataset's default" },
      { path: "spec.dataset.test_samples", label: "Test examples", kind: "int", value: "", help: "Empty: the dataset's default" },
      { path: "spec.dataset.distribution", label: "Distribution", kind: "select", value: "uniform", options: [["uniform", "uniform"], ["normal", "normal"]], when: isDataset("sum") },
      { path: "spec.dataset.low", label: "Low", kind: "float", value: 0, when: () => v("spec.dataset.name") === "sum" && v("spec.dataset.distribution") === "uniform" },
      { path: "spec.dataset.high", label: "High", kind: "float", value: 1, when: () => v("spec.dataset.name") === "sum" && v("spec.dataset.distribution") === "uniform" },
      { path: "spec.dataset.mean", label: "Mean", kind: "float", value: 0, when: () => v("spec.dataset.name") === "sum" && v("spec.dataset.distribution") === "normal" },
      { path: "spec.dataset.std", label: "Standard deviation", kind: "float", value: 1, when: () => v("spec.dataset.name") === "sum" && v("spec.dataset.distribution") === "normal" },
    ],
  },
  {
    title: "Training",
    fields: [
      { path: "spec.training.optimizer", label: "Optimizer", kind: "select", value: "adam", options: OPTIMIZERS.map((name) => [name, name]) },
      { path: "spec.training.learning_rate", label: "Learning rate", kind: "float", value: 0.001 },
      { path: "spec.training.momentum", label: "Momentum", kind: "float", value: 0.9, when: () => v("spec.training.optimizer") === "momentum" },
      { path: "spec.training.lr_schedule", label: "Learning-rate schedule", kind: "select", value: "constant", options: [["constant", "constant"], ["cosine", "cosine, to 0 per cycle"]], help: "Within every cycle's epochs" },
      { path: "spec.training.batch_size", label: "Batch size", kind: "int", value: 128 },
      { path: "spec.training.epochs", label: "Epochs per cycle", kind: "int", value: 5 },
      { path: "spec.training.first_epochs", label: "Epochs of cycle 0", kind: "int", value: "", help: "Empty: as every cycle" },
      { path: "spec.training.loss", label: "Loss", kind: "select", value: "mse", options: [["mse", "MSE"], ["rmse", "RMSE"], ["crossentropy", "cross-entropy"]] },
      { path: "spec.training.head", label: "Output head", kind: "select", value: "softmax", options: [["softmax", "softmax"], ["llr", "LLR: per-class sigmoid (Liang et al.)"]], when: () => v("spec.training.loss") === "crossentropy" },
      { path: "spec.training.l1", label: "L1 on kernels", kind: "float", value: 0, group: "Regularisation" },
      { path: "spec.training.l2", label: "L2 on kernels", kind: "float", value: 0, group: "Regularisation" },
      { path: "spec.training.activity_l1", label: "Activity L1", kind: "float", value: 0, group: "Regularisation" },
      { path: "spec.training.activity_l2", label: "Activity L2", kind: "float", value: 0, group: "Regularisation" },
      { path: "spec.training.bn_l1", label: "L1 on BN γ", kind: "float", value: 0, group: "Regularisation", help: "Network Slimming: on the batch norms after pruned layers" },
      { path: "spec.training.group_lasso", label: "Group lasso", kind: "float", value: 0, group: "Regularisation", help: "On each prunable unit's weights" },
    ],
  },
  {
    title: "Pruning",
    fields: [
      { path: "spec.pruning.criterion.type", label: "Criterion", kind: "select", value: "apoz", options: [], span: 2 }, // labels from the API
      { path: "spec.pruning.criterion.k", label: "k", kind: "float", value: 1, when: criterionIs("apoz", "count_band", "variance_band"), help: "Standard deviations (APoZ, count band) or variances (variance band)" },
      { path: "spec.pruning.criterion.threshold", label: "Threshold", kind: "float", value: 0, when: criterionIs("activation_count", "variance", "bn_scale", "weight_norm"), help: "Activation count: outputs > 0; variance: output variance; BN scale, weight norm: fraction of the layer's mean score" },
      { path: "spec.pruning.criterion.fraction", label: "Lowest fraction per cycle", kind: "float", value: 0.1, when: criterionIs("bn_scale", "weight_norm"), help: "Also remove this fraction of each layer's lowest scores" },
      { path: "spec.pruning.criterion.norm", label: "Norm", kind: "select", value: "l1", options: [["l1", "L1: sum of |w|"], ["l2", "L2"]], when: criterionIs("weight_norm") },
      { path: "spec.pruning.max_fraction", label: "Max fraction per cycle", kind: "float", value: 0.5, help: "Cap on units removed from a layer per cycle" },
      { path: "spec.pruning.max_cycles", label: "Max cycles", kind: "int", value: 10 },
      { path: "spec.pruning.min_units", label: "Min units", kind: "int", value: 1 },
      { path: "spec.pruning.tolerance", label: "Tolerance", kind: "float", value: "", help: "Reject a cycle whose validation metric falls further behind cycle 0's (the run stops there unless it backs off); empty: never" },
      { path: "spec.pruning.backoff.retries", label: "Back-off retries", kind: "int", value: 0, when: () => String(v("spec.pruning.tolerance") ?? "").trim() !== "", help: "Rejected cycles in a row that retry from the last kept model with a smaller step instead of ending the run (0–20)" },
      { path: "spec.pruning.backoff.factor", label: "Back-off factor", kind: "float", value: 0.5, when: () => String(v("spec.pruning.tolerance") ?? "").trim() !== "" && Number(v("spec.pruning.backoff.retries")) > 0, help: "Each retry's step: the previous step times this (between 0 and 1)" },
      { path: "spec.pruning.layers_per_cycle", label: "Layers per cycle", kind: "int", value: "", help: "Highest mean APoZ first; empty: all" },
      { path: "spec.pruning.distortion", label: "Weight distortion", kind: "float", value: 0, help: "Çallı's noise between cycles" },
      { path: "spec.pruning.finetune", label: "Finetune", kind: "select", value: "full", options: [["full", "full: retrain everything"], ["snapshot", "snapshot: biases and batch norm only"]] },
      { path: "spec.pruning.stats_samples", label: "Measured examples", kind: "int", value: 10000 },
      { path: "spec.pruning.histogram_bins", label: "Histogram bins", kind: "int", value: 32 },
      { path: "spec.pruning.fold_constant", label: "Fold constant units", kind: "check", value: true },
      { path: "spec.pruning.merge_linear", label: "Merge always-active units", kind: "check", value: false },
      { path: "spec.pruning.merge_tolerance", label: "Merge tolerance", kind: "float", value: 0, when: () => v("spec.pruning.merge_linear") === true, help: "Also merge units inactive on at most this fraction of inputs (0–0.1)" },
    ],
  },
  {
    title: "TFLite benchmark",
    fields: [
      { path: "spec.benchmark.cycles", label: "Cycles converted", kind: "select", value: "first_last", options: [["first_last", "first and final"], ["every", "every cycle"], ["none", "none"]] },
      { path: "spec.benchmark.formats", label: "Formats", kind: "checks", value: ["float32"], options: FORMATS, span: 2 },
      { path: "spec.benchmark.runs", label: "Timed runs", kind: "int", value: 200 },
      { path: "spec.benchmark.threads", label: "Threads", kind: "int", value: 1 },
    ],
  },
];
const META_FIELDS = [
  { path: "owner", label: "Owner", kind: "text", value: "", help: "Empty: anonymous" },
  { path: "tags", label: "Tags", kind: "text", value: "", help: "Comma-separated", span: 2 },
  { path: "notes", label: "Notes", kind: "textarea", value: "", help: "Why you run it, what you expect", full: true },
];
const ALL_FIELDS = [...SECTIONS.flatMap((section) => section.fields), ...META_FIELDS];
const FIELD_BY_PATH = new Map(ALL_FIELDS.map((field) => [field.path, field]));

let presets = [];
let recipes = [];
let customModel = null; // a model loaded from YAML that is not a preset
// The last spec loaded into the form (a recipe, a clone, YAML): settings the form has no field for
// (pruning.layers, benchmark.warmup, ...) come from it, so a loaded spec submits unchanged.
let baseSpec = null;
let baseModel = null; // the model select's value when baseSpec was loaded
let mode = "form";
let parsed = null; // the last valid spec parsed from YAML (expanded)
let previewSerial = 0;

const fieldId = (path) => `f-${path.replaceAll(".", "-")}`;
const errorId = (path) => `e-${path.replaceAll(".", "-")}`;

// ---------------------------------------------------------------------------------------- building

function input(field) {
  const id = fieldId(field.path);
  const common = { id, name: field.path, "aria-describedby": errorId(field.path) };
  if (field.kind === "select") {
    return h("select", common, field.options.map(([value, label]) => h("option", { value, selected: value === field.value }, label)));
  }
  if (field.kind === "preset") return h("select", common);
  if (field.kind === "check") return h("input", { ...common, type: "checkbox", checked: Boolean(field.value) });
  if (field.kind === "checks") {
    return h(
      "div",
      { class: "row", id, role: "group", "aria-describedby": errorId(field.path) },
      field.options.map((option) =>
        h("label", { class: "nowrap", style: { fontWeight: 500 } }, h("input", { type: "checkbox", name: field.path, value: option, checked: field.value.includes(option) }), ` ${option}`),
      ),
    );
  }
  if (field.kind === "textarea") return h("textarea", { ...common, rows: 3, style: { fontFamily: "inherit", fontSize: "13.5px" } });
  const numeric = field.kind === "int" || field.kind === "float";
  return h("input", { ...common, type: "text", placeholder: field.placeholder, inputmode: numeric ? (field.kind === "int" ? "numeric" : "decimal") : null, value: String(field.value ?? ""), autocomplete: "off", spellcheck: numeric ? "false" : null });
}

function fieldElement(field) {
  const control = input(field);
  const label = field.kind === "checks" ? h("span", { class: "label" }, field.label) : h("label", { for: fieldId(field.path) }, field.label);
  const wrapper =
    field.kind === "check"
      ? h("div", { class: "field check", dataset: { path: field.path } }, control, label, h("div", { class: "error", id: errorId(field.path) }))
      : h(
          "div",
          { class: ["field", field.span === 2 ? "span-2" : null, field.full ? "full" : null], dataset: { path: field.path } },
          label,
          control,
          field.help ? h("div", { class: "help" }, field.help) : null,
          h("div", { class: "error", id: errorId(field.path) }),
        );
  return wrapper;
}

function section(spec) {
  const plain = spec.fields.filter((field) => !field.group);
  const groups = [...new Set(spec.fields.filter((field) => field.group).map((field) => field.group))];
  return h(
    "fieldset",
    { class: "form-section" },
    h("legend", {}, spec.title),
    spec.title === "Model" ? h("div", { class: "section-hint", id: "preset-description" }) : null,
    h("div", { class: "fields" }, plain.map(fieldElement)),
    groups.map((group) =>
      h("div", { style: { marginTop: "14px" } }, h("div", { class: "help", style: { fontWeight: 600, marginBottom: "8px", color: "var(--muted)" } }, group), h("div", { class: "fields" }, spec.fields.filter((field) => field.group === group).map(fieldElement))),
    ),
  );
}

function build(root) {
  const formPanel = h("div", { id: "panel-form", role: "tabpanel", "aria-labelledby": "tab-form" }, h("div", { id: "clone-note" }), recipePicker(), SECTIONS.map(section), uploadSection(() => schedulePreview()));
  const yamlArea = h("textarea", {
    id: "yaml-text",
    class: "yaml-area",
    spellcheck: "false",
    placeholder: "name: my-experiment\nmodel: lenet-300-100\ndataset: {name: mnist}\ntraining: {loss: crossentropy, epochs: 3}\npruning: {criterion: {type: apoz, k: 1}}",
    "aria-describedby": "e-yaml",
    "aria-label": "Spec as YAML or JSON",
  });
  const file = h("input", { type: "file", id: "yaml-file", accept: ".yaml,.yml,.json,text/yaml,application/json", class: "sr-only" });
  const yamlPanel = h(
    "div",
    { id: "panel-yaml", role: "tabpanel", "aria-labelledby": "tab-yaml", hidden: true },
    h(
      "div",
      { class: "form-section" },
      h("div", { class: "row", style: { marginBottom: "10px" } }, h("label", { for: "yaml-file", class: "btn btn-small", tabindex: "0", onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); file.click(); } } }, "Upload a file…"), file, h("span", { class: "drop-hint" }, "or paste a spec below, or drop a .yaml/.json file on it"), h("span", { class: "spacer" }), h("button", { type: "button", class: "btn btn-small", id: "yaml-to-form", disabled: true }, "Edit in the form")),
      yamlArea,
      h("div", { class: "field" }, h("div", { class: "error", id: "e-yaml", role: "alert" })),
    ),
  );
  const tabs = h(
    "div",
    { class: "tabs", role: "tablist" },
    h("button", { type: "button", role: "tab", id: "tab-form", "aria-selected": "true", "aria-controls": "panel-form", onclick: () => switchMode("form") }, "Form"),
    h("button", { type: "button", role: "tab", id: "tab-yaml", "aria-selected": "false", "aria-controls": "panel-yaml", onclick: () => switchMode("yaml") }, "YAML / JSON"),
  );
  const meta = h("fieldset", { class: "form-section" }, h("legend", {}, "Owner, tags and notes"), h("div", { class: "fields" }, META_FIELDS.map(fieldElement)));
  const side = h(
    "aside",
    { class: "form-side" },
    h(
      "section",
      { class: "card", "aria-label": "Preview" },
      h("div", { class: "card-head" }, h("h2", {}, "Preview"), h("span", { class: "hint", id: "preview-state" }, "")),
      h("div", { class: "preview-total" }, stat("Parameters", h("span", { id: "preview-params" }, "–")), stat("FLOPs / example", h("span", { id: "preview-flops" }, "–"))),
      h("ul", { id: "preview-limits", class: "preview-limits", "aria-label": "This server's limits" }),
      h("div", { id: "preview-layers", style: { borderTop: "1px solid var(--border)", maxHeight: "320px", overflow: "auto" } }),
    ),
    h(
      "section",
      { class: "card card-body" },
      h("div", { id: "form-errors", class: "form-errors", "aria-live": "polite" }),
      h("button", { type: "submit", class: "btn btn-primary", id: "submit", style: { width: "100%", justifyContent: "center", height: "40px", marginTop: "4px" } }, "Create experiment"),
      h("div", { class: "help", style: { marginTop: "8px", textAlign: "center" } }, "Queued at once; a worker picks it up."),
    ),
  );
  const form = h(
    "form",
    { id: "new-form", novalidate: true, class: "form-layout", autocomplete: "off" },
    h("div", {}, h("section", { class: "card" }, tabs, formPanel, yamlPanel), h("section", { class: "card section" }, meta)),
    side,
  );
  replace(root, form);
  return { form, yamlArea, file };
}

// ---------------------------------------------------------------------------------------- reading

function readField(path) {
  const field = FIELD_BY_PATH.get(path);
  const element = document.getElementById(fieldId(path));
  if (!field || !element) return undefined;
  if (field.kind === "check") return element.checked;
  if (field.kind === "checks") return [...element.querySelectorAll("input:checked")].map((box) => box.value);
  return element.value;
}

function numberValue(field, text) {
  const trimmed = String(text).trim();
  if (trimmed === "") return undefined;
  const value = Number(trimmed);
  if (!Number.isFinite(value)) return trimmed; // the server names it as not a number, beside the field
  return value;
}

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] ??= {};
  node[keys[keys.length - 1]] = value;
}

function visible(field) {
  return !field.when || field.when();
}

/** The request body the form describes (hidden and empty optional fields left out). */
function formRequest() {
  const body = { spec: {} };
  for (const field of ALL_FIELDS) {
    if (!visible(field)) continue;
    let value = readField(field.path);
    if (field.kind === "int" || field.kind === "float") value = numberValue(field, value);
    else if (field.kind === "preset") value = value === "__custom__" ? customModel : value;
    else if (field.path === "tags") value = String(value).split(",").map((tag) => tag.trim()).filter(Boolean);
    else if (field.kind === "text" || field.kind === "textarea") value = field.path === "spec.name" ? value : value.trim() || undefined;
    if (value === undefined) continue;
    setPath(body, field.path, value);
  }
  addBaseSettings(body);
  return applyUploads(body);
}

/** Leaf settings of a spec as [path, value] (arrays are leaves; the model is one leaf). */
function leaves(node, prefix) {
  if (prefix === "spec.model" || node === null || typeof node !== "object" || Array.isArray(node)) return [[prefix, node]];
  return Object.entries(node).flatMap(([key, value]) => leaves(value, `${prefix}.${key}`));
}

/** Settings of the loaded spec the form has no field for, where they still apply to what the form says. */
function addBaseSettings(body) {
  if (!baseSpec) return;
  for (const [path, value] of leaves(baseSpec, "spec")) {
    if (value === null || FIELD_BY_PATH.has(path) || path === "spec.model" || path.startsWith("spec.pruning.criterion.")) continue;
    if (getPath(body, path) !== undefined) continue;
    if (path.startsWith("spec.dataset.") && v("spec.dataset.name") !== baseSpec.dataset?.name) continue;
    if (path === "spec.pruning.layers" && v("spec.model") !== baseModel) continue;
    setPath(body, path, value);
  }
}

function metaRequest() {
  const body = formRequest();
  delete body.spec;
  return body;
}

// ---------------------------------------------------------------------------------------- writing

function writeField(path, value) {
  const field = FIELD_BY_PATH.get(path);
  const element = document.getElementById(fieldId(path));
  if (!field || !element || value === undefined) return;
  if (field.kind === "check") element.checked = Boolean(value);
  else if (field.kind === "checks") for (const box of element.querySelectorAll("input")) box.checked = (value || []).includes(box.value);
  else element.value = value === null ? "" : String(value);
}

function getPath(source, path) {
  return path.split(".").reduce((node, key) => (node && typeof node === "object" ? node[key] : undefined), source);
}

/** Fill the form from a complete spec (as the server returns it from a parse or preview). */
function loadIntoForm(spec) {
  const match = presets.find((preset) => JSON.stringify(preset.model) === JSON.stringify(spec.model));
  customModel = match ? null : spec.model;
  fillPresets(match ? match.name : "__custom__");
  for (const field of SECTIONS.flatMap((one) => one.fields)) {
    if (field.kind === "preset") continue;
    writeField(field.path, getPath({ spec }, field.path) ?? (field.kind === "int" || field.kind === "float" ? "" : undefined));
  }
  const criterion = spec.pruning?.criterion || {};
  writeField("spec.pruning.criterion.type", criterion.type);
  baseSpec = spec;
  baseModel = readField("spec.model");
  selectUploads(spec);
  updateVisibility();
}

/** Tags, notes and owner of a cloned experiment into the meta fields. */
function loadMeta({ owner, tags, notes }) {
  writeField("owner", owner === "anonymous" ? "" : owner);
  writeField("tags", (tags || []).join(", "));
  writeField("notes", notes || "");
}

// ---------------------------------------------------------------------------------------- recipes

function recipePicker() {
  return h(
    "div",
    { class: "form-section recipe-picker" },
    h(
      "div",
      { class: "row" },
      h("label", { for: "recipe" }, "Start from a recipe"),
      h("select", { id: "recipe", "aria-describedby": "recipe-description" }, h("option", { value: "" }, "— choose an example spec —")),
      h("button", { type: "button", class: "btn btn-small", id: "load-recipe", disabled: true }, "Load into the form"),
    ),
    h("div", { class: "help", id: "recipe-description" }, "Every examples/*.yaml: the papers' recipes with the settings that reproduce them."),
  );
}

function fillRecipes() {
  const select = byId("recipe");
  replace(select, h("option", { value: "" }, recipes.length ? "— choose an example spec —" : "no recipes on this server"), recipes.map((recipe) => h("option", { value: recipe.name, title: recipe.description }, `${recipe.name} · ${recipe.summary}`)));
  const describe = () => {
    const recipe = recipes.find((one) => one.name === select.value);
    byId("recipe-description").textContent = recipe ? recipe.description : "Every examples/*.yaml: the papers' recipes with the settings that reproduce them.";
    byId("load-recipe").disabled = !recipe;
  };
  select.addEventListener("change", describe);
  byId("load-recipe").addEventListener("click", () => {
    const recipe = recipes.find((one) => one.name === select.value);
    if (!recipe) return;
    if (mode !== "form") switchMode("form");
    loadIntoForm(recipe.spec);
    byId("preset-description").textContent = `Loaded recipe ${recipe.name}. ${byId("preset-description").textContent}`;
    refreshPreview();
  });
}

async function loadClone(experimentId) {
  try {
    const detail = await api.get(`/api/experiments/${experimentId}`);
    loadIntoForm(detail.spec);
    loadMeta(detail);
    replace(byId("clone-note"), notice("info", "A copy of ", h("a", { href: `/experiments/${detail.id}` }, `#${detail.id} ${detail.name}`), ": change what you like, then create it."));
  } catch (error) {
    replace(byId("clone-note"), notice("error", `Could not load experiment ${experimentId} to clone: ${error.message}`));
  }
}

function fillPresets(selectedName) {
  const select = byId(fieldId("spec.model"));
  replace(
    select,
    presets.map((preset) => h("option", { value: preset.name, selected: preset.name === selectedName }, `${preset.name} · ${fmt.compact(preset.cost.params)} params · ${fmt.compact(preset.cost.flops)} FLOPs`)),
    customModel ? h("option", { value: "__custom__", selected: selectedName === "__custom__" }, `custom model from YAML (${customModel.layers?.length ?? "?"} layers)`) : null,
  );
  describePreset();
}

function describePreset() {
  const name = readField("spec.model");
  const preset = presets.find((one) => one.name === name);
  byId("preset-description").textContent = preset ? preset.description : customModel ? "A model loaded from a YAML spec; edit its layers in the YAML tab." : "";
}

function applyPresetRecipe() {
  const recipe = PRESET_RECIPES[readField("spec.model")];
  if (!recipe) return;
  writeField("spec.dataset.name", recipe.dataset);
  writeField("spec.dataset.target", recipe.target);
  writeField("spec.training.loss", recipe.loss);
}

function updateVisibility() {
  for (const field of ALL_FIELDS) {
    const wrapper = document.querySelector(`.field[data-path="${field.path}"]`);
    if (wrapper) wrapper.hidden = !visible(field);
  }
}

// ---------------------------------------------------------------------------------------- errors

function clearErrors() {
  for (const element of document.querySelectorAll(".field .error")) element.textContent = "";
  for (const element of document.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
  replace(byId("form-errors"));
}

/** The form field an error path belongs to: the field itself, else its nearest visible ancestor. */
function fieldFor(path) {
  const parts = path.split(".");
  while (parts.length) {
    const candidate = parts.join(".");
    const field = FIELD_BY_PATH.get(candidate);
    if (field && visible(field)) return field;
    if (candidate === "spec.pruning.criterion") return FIELD_BY_PATH.get("spec.pruning.criterion.type");
    parts.pop();
  }
  return null;
}

/** Show 422 issues: each beside its field, the rest (and a summary) above the submit button. */
function showIssues(issues, { summary = true } = {}) {
  const keepSummary = !summary && byId("form-errors").childElementCount > 0;
  clearErrors();
  const loose = [];
  let first = null;
  for (const issue of issues) {
    const path = issue.loc[0] === "body" ? issue.loc.slice(1).join(".") : issue.field;
    const field = mode === "form" ? fieldFor(path) : null;
    if (field) {
      const error = byId(errorId(field.path));
      error.textContent = error.textContent ? `${error.textContent}; ${issue.msg}` : issue.msg;
      const control = byId(fieldId(field.path));
      control.setAttribute("aria-invalid", "true");
      first ??= control;
    } else loose.push(issue);
  }
  if (mode === "yaml") {
    byId("e-yaml").textContent = issues.map((issue) => (issue.field && issue.field !== "text" ? `${issue.field.replace(/^spec\./, "")}: ${issue.msg}` : issue.msg)).join("\n");
    byId("yaml-text").setAttribute("aria-invalid", "true");
  }
  if ((summary || keepSummary) && issues.length) {
    replace(
      byId("form-errors"),
      notice(
        "error",
        h("strong", {}, issues.length === 1 ? "One field needs attention" : `${issues.length} fields need attention`),
        loose.length ? h("ul", {}, loose.map((issue) => h("li", {}, issue.field ? `${issue.field.replace(/^spec\./, "")}: ${issue.msg}` : issue.msg))) : null,
      ),
    );
  }
  return first;
}

// ---------------------------------------------------------------------------------------- preview

// The server's limits as the preview lists them (name -> label).
const LIMIT_LABELS = {
  parameters: "Parameters",
  flops_per_example: "FLOPs / example",
  training_examples_epochs: "Training examples × epochs",
  wall_seconds: "Wall time",
};

/** One limit: the spec's estimate against the most the server allows; over the limit is marked. */
function limitItem(check) {
  const label = LIMIT_LABELS[check.name] ?? check.name;
  let text;
  if (check.name === "wall_seconds") text = `stops after ${fmt.duration(check.limit)}`;
  else if (check.value === null) text = `unknown until the worker reads the data · at most ${fmt.compact(check.limit)}`;
  else text = `${fmt.compact(check.value)} of at most ${fmt.compact(check.limit)}`;
  return h(
    "li",
    { class: check.within ? "within" : "over", title: `${check.setting} = ${fmt.int(check.limit)}` },
    h("span", { class: "limit-name" }, label),
    h("span", { class: "limit-value" }, text, check.within ? "" : " · over the limit"),
  );
}

function showPreview(preview) {
  byId("preview-params").textContent = fmt.int(preview.cost.params);
  byId("preview-flops").textContent = fmt.int(preview.cost.flops);
  const limits = preview.limits ?? [];
  replace(byId("preview-limits"), limits.map(limitItem));
  replace(byId("preview-layers"), costTable(preview.spec.model, preview.cost));
  showGroups(preview.groups);
  const over = limits.filter((check) => !check.within).length;
  byId("preview-state").textContent = over ? `over ${over === 1 ? "a limit" : `${over} limits`} of this server` : "valid spec";
}

async function refreshPreview() {
  const serial = ++previewSerial;
  byId("preview-state").textContent = "checking…";
  try {
    let preview;
    if (mode === "yaml") {
      const text = byId("yaml-text").value;
      if (!text.trim()) {
        parsed = null;
        byId("preview-state").textContent = "paste a spec";
        byId("yaml-to-form").disabled = true;
        clearErrors();
        return;
      }
      preview = await api.postText("/api/specs/parse", text);
      if (serial !== previewSerial) return;
      parsed = preview.spec;
      byId("yaml-to-form").disabled = false;
    } else {
      // The preview is about the model's cost: an empty name is reported on submit, not while typing.
      const spec = formRequest().spec;
      if (!String(spec.name ?? "").trim()) spec.name = "untitled";
      preview = await api.post("/api/specs/preview", { spec });
      if (serial !== previewSerial) return;
    }
    clearErrors();
    byId("yaml-text").removeAttribute("aria-invalid");
    showPreview(preview);
  } catch (error) {
    if (serial !== previewSerial) return;
    if (mode === "yaml") {
      parsed = null;
      byId("yaml-to-form").disabled = true;
    }
    byId("preview-state").textContent = error instanceof ApiError && error.status === 422 ? "not valid yet" : "preview unavailable";
    if (error instanceof ApiError && error.issues.length) showIssues(error.issues, { summary: false });
  }
}

const schedulePreview = debounce(refreshPreview, 350);

// ---------------------------------------------------------------------------------------- modes

function switchMode(next) {
  mode = next;
  byId("panel-form").hidden = next !== "form";
  byId("panel-yaml").hidden = next !== "yaml";
  byId("tab-form").setAttribute("aria-selected", String(next === "form"));
  byId("tab-yaml").setAttribute("aria-selected", String(next === "yaml"));
  clearErrors();
  byId("e-yaml").textContent = "";
  refreshPreview();
}

async function readFile(file) {
  if (!file) return;
  if (file.size > 200_000) {
    byId("e-yaml").textContent = "That file is larger than a spec can be (200 KB).";
    return;
  }
  byId("yaml-text").value = await file.text();
  switchMode("yaml");
}

// ---------------------------------------------------------------------------------------- submit

async function submit(event) {
  event.preventDefault();
  schedulePreview.cancel();
  previewSerial += 1; // a preview still on its way must not overwrite what the submit shows
  const button = byId("submit");
  button.disabled = true;
  button.textContent = "Creating…";
  try {
    let body;
    if (mode === "yaml") {
      await refreshPreview();
      if (!parsed) {
        showIssues([{ loc: ["body", "text"], field: "text", msg: byId("e-yaml").textContent || "Paste a valid spec first." }]);
        return;
      }
      body = { ...metaRequest(), spec: parsed };
    } else body = formRequest();
    const created = await api.post("/api/experiments", body);
    location.assign(`/experiments/${created.id}`);
  } catch (error) {
    if (error instanceof ApiError && error.issues.length) {
      byId("preview-state").textContent = "not valid yet";
      const first = showIssues(error.issues);
      first?.focus();
    } else {
      replace(byId("form-errors"), notice("error", `Could not create the experiment: ${error.message}`));
    }
  } finally {
    button.disabled = false;
    button.textContent = "Create experiment";
  }
}

async function main() {
  markNav();
  await loadCriterionLabels();
  FIELD_BY_PATH.get("spec.pruning.criterion.type").options = criterionOptions();
  const { form, yamlArea, file } = build(byId("new-root"));
  updateVisibility();
  try {
    const [presetList, datasets, recipeList] = await Promise.all([api.get("/api/presets"), api.get("/api/datasets").catch(() => []), api.get("/api/recipes").catch(() => [])]);
    presets = presetList;
    recipes = recipeList;
    const select = byId(fieldId("spec.dataset.name"));
    for (const dataset of datasets) {
      const option = [...select.options].find((one) => one.value === dataset.name);
      if (option && !dataset.available) option.textContent += " (files not found on this server)";
    }
  } catch (error) {
    replace(byId("form-errors"), notice("error", `Could not load the presets: ${error.message}`));
  }
  fillPresets("sum-mlp");
  fillRecipes();
  await loadUploads(api.get);
  const cloneOf = Number(new URLSearchParams(location.search).get("from"));
  if (Number.isInteger(cloneOf) && cloneOf > 0) await loadClone(cloneOf);
  form.addEventListener("input", (event) => {
    if (event.target === yamlArea) {
      parsed = null;
      schedulePreview();
      return;
    }
    if (event.target.id === fieldId("spec.model")) {
      describePreset();
      applyPresetRecipe();
    }
    updateVisibility();
    schedulePreview();
  });
  form.addEventListener("submit", submit);
  file.addEventListener("change", () => readFile(file.files[0]));
  yamlArea.addEventListener("dragover", (event) => event.preventDefault());
  yamlArea.addEventListener("drop", (event) => {
    event.preventDefault();
    readFile(event.dataTransfer.files[0]);
  });
  byId("yaml-to-form").addEventListener("click", () => {
    if (!parsed) return;
    const spec = parsed;
    switchMode("form");
    loadIntoForm(spec);
    refreshPreview();
  });
  await refreshPreview();
  byId(fieldId("spec.name")).focus();
  markReady("new");
}

main();
