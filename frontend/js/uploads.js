// Your own model and data on the New page: upload a .keras model or a data set (.npz, or MNIST-style IDX
// files) by file picker or drag and drop, with a progress bar; see what the server read; pick one for the
// experiment. The form's request then names them by id (model: {uploaded, weights}, dataset: {name: npz, id}).
//
// Uploads are multipart POSTs (XMLHttpRequest, for its upload progress) with the session's CSRF header:
// the server takes multipart on /api/models and /api/datasets only, and only from its own pages.

import { ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { notice } from "./components.js";
import * as fmt from "./format.js";

const KINDS = {
  model: { route: "/api/models", list: "/api/models", accept: ".keras", label: "Model (.keras)", multiple: false },
  dataset: { route: "/api/datasets", list: "/api/datasets/uploaded", accept: ".npz,.gz,.idx1-ubyte,.idx3-ubyte,application/octet-stream", label: "Data set (.npz, or 2 or 4 IDX files)", multiple: true },
};

const state = { model: [], dataset: [], onChange: () => {} };

function csrfToken() {
  const part = document.cookie.split("; ").find((one) => one.startsWith("prunelab_csrf="));
  return part ? decodeURIComponent(part.slice("prunelab_csrf=".length)) : null;
}

/** POST files as multipart with upload progress; resolves to the server's JSON, rejects with ApiError. */
export function sendFiles(route, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", route);
    request.setRequestHeader("Accept", "application/json");
    const token = csrfToken();
    if (token) request.setRequestHeader("X-CSRF-Token", token);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        body = null;
      }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(new ApiError(request.status, body));
    });
    request.addEventListener("error", () => reject(new ApiError(0, null)));
    request.send(form);
  });
}

/** What the server read from an upload, in one line. */
export function summaryText(item) {
  const s = item.summary || {};
  if (item.kind === "model") {
    const prunable = (s.layers || []).filter((layer) => layer.prunable).map((layer) => layer.name);
    return `input ${JSON.stringify(s.input_shape)} → ${JSON.stringify(s.output_shape)}, ${fmt.compact(s.parameters)} parameters; prunable: ${prunable.join(", ") || "none"}`;
  }
  const target = s.classes ? `${s.classes} classes` : `values ${JSON.stringify(s.value_range)}`;
  return `${s.train_examples} train / ${s.test_examples} test examples, input ${JSON.stringify(s.input_shape)}, ${target}`;
}

function layerList(item) {
  if (item.kind !== "model") return null;
  return h(
    "ul",
    { class: "upload-layers" },
    (item.summary.layers || []).map((layer) => h("li", {}, h("code", {}, layer.name), ` ${layer.type}${layer.units ? ` (${layer.units})` : ""}: `, layer.prunable ? "prunable" : `fixed, ${layer.why}`)),
  );
}

function optionLabel(item) {
  return `#${item.id} ${item.name}`;
}

function fillSelect(kind) {
  const select = document.getElementById(`upload-pick-${kind}`);
  if (!select) return;
  const chosen = select.value;
  replace(select, h("option", { value: "" }, kind === "model" ? "none: use the Model section" : "none: use the Dataset section"), state[kind].map((item) => h("option", { value: String(item.id) }, optionLabel(item))));
  select.value = state[kind].some((item) => String(item.id) === chosen) ? chosen : "";
}

function showSummary(kind) {
  const id = document.getElementById(`upload-pick-${kind}`)?.value;
  const item = state[kind].find((one) => String(one.id) === id);
  replace(document.getElementById(`upload-summary-${kind}`), item ? [h("div", { class: "help" }, summaryText(item)), layerList(item)] : null);
}

async function upload(kind, files) {
  if (!files.length) return;
  const bar = document.getElementById(`upload-bar-${kind}`);
  const status = document.getElementById(`upload-status-${kind}`);
  bar.parentElement.hidden = false;
  bar.style.width = "0%";
  replace(status, `Uploading ${[...files].map((file) => file.name).join(", ")}…`);
  try {
    const item = await sendFiles(KINDS[kind].route, files, (fraction) => {
      bar.style.width = `${Math.round(fraction * 100)}%`;
      if (fraction >= 1) replace(status, "Checking the file on the server…");
    });
    state[kind] = [item, ...state[kind].filter((one) => one.id !== item.id)];
    fillSelect(kind);
    document.getElementById(`upload-pick-${kind}`).value = String(item.id);
    replace(status, item.existing ? `Already stored as #${item.id}.` : `Stored as #${item.id}.`);
    showSummary(kind);
    state.onChange();
  } catch (error) {
    const reason = error.issues?.length ? error.issues.map((issue) => issue.msg).join("; ") : error.message;
    replace(status, notice("error", `Refused: ${reason}`));
  } finally {
    bar.parentElement.hidden = true;
  }
}

function picker(kind) {
  const config = KINDS[kind];
  const input = h("input", { type: "file", id: `upload-file-${kind}`, accept: config.accept, multiple: config.multiple, class: "sr-only", onchange: () => upload(kind, input.files) });
  const zone = h(
    "div",
    {
      class: "drop-zone",
      id: `upload-drop-${kind}`,
      ondragover: (event) => event.preventDefault(),
      ondrop: (event) => {
        event.preventDefault();
        upload(kind, event.dataTransfer.files);
      },
    },
    h("label", { for: input.id, class: "btn btn-small", tabindex: "0", onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); } } }, "Upload…"),
    input,
    h("span", { class: "drop-hint" }, " or drop the file here"),
  );
  return h(
    "div",
    { class: "field span-2" },
    h("label", { for: `upload-pick-${kind}` }, config.label),
    h("select", { id: `upload-pick-${kind}`, onchange: () => { showSummary(kind); state.onChange(); } }),
    zone,
    h("div", { class: "progress", hidden: true }, h("div", { class: "progress-fill", id: `upload-bar-${kind}`, style: { width: "0%" } })),
    h("div", { class: "help", id: `upload-status-${kind}`, role: "status" }),
    h("div", { id: `upload-summary-${kind}` }),
  );
}

/** The "Your own model and data" section; ``onChange`` runs when a choice changes (refresh the preview). */
export function uploadSection(onChange) {
  state.onChange = onChange || (() => {});
  const weights = h("div", { class: "field" }, h("label", { for: "upload-weights" }, "Start from"), h("select", { id: "upload-weights", onchange: () => state.onChange() }, h("option", { value: "trained" }, "its trained weights"), h("option", { value: "reinitialize" }, "fresh weights")));
  return h("fieldset", { class: "form-section", id: "uploads" }, h("legend", {}, "Your own model and data"), h("div", { class: "fields" }, picker("model"), weights, picker("dataset")));
}

/** Load the caller's uploads into the pickers. */
export async function loadUploads(get) {
  for (const kind of Object.keys(KINDS)) {
    state[kind] = await get(KINDS[kind].list).catch(() => []);
    fillSelect(kind);
  }
}

/** Point a form request at the chosen uploads (the Dataset section's samples and target are kept). */
export function applyUploads(body) {
  const modelId = Number(document.getElementById("upload-pick-model")?.value || 0);
  const dataId = Number(document.getElementById("upload-pick-dataset")?.value || 0);
  delete body.spec.uploaded_model; // the pickers say which uploads the experiment uses, not a loaded spec
  if (!dataId && body.spec.dataset) {
    delete body.spec.dataset.id;
    delete body.spec.dataset.sha256;
  }
  if (modelId) body.spec.model = { uploaded: modelId, weights: document.getElementById("upload-weights").value };
  if (dataId) {
    const given = body.spec.dataset || {};
    const kept = Object.fromEntries(Object.entries(given).filter(([key]) => ["train_samples", "test_samples", "target"].includes(key)));
    body.spec.dataset = { name: "npz", id: dataId, ...kept };
  }
  return body;
}

/** Set the pickers from a spec (a clone, or YAML read into the form): its uploaded model and data set. */
export function selectUploads(spec) {
  const choices = { model: spec.uploaded_model?.id, dataset: spec.dataset?.name === "npz" ? spec.dataset.id : undefined };
  for (const [kind, id] of Object.entries(choices)) {
    const select = document.getElementById(`upload-pick-${kind}`);
    if (!select) continue;
    select.value = id && state[kind].some((item) => item.id === id) ? String(id) : "";
    showSummary(kind);
  }
  if (spec.uploaded_model) document.getElementById("upload-weights").value = spec.uploaded_model.weights;
}
