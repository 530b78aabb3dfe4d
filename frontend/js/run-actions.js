// Managing one experiment from its page: delete (after a confirmation dialog), clone into the New
// form, edit its tags and notes (PATCH), and its rerun lineage ("rerun of #4" / "reruns: #7, #9").

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { toast } from "./components.js";

/** Tags typed as "a, b, c": trimmed, blanks dropped (the server bounds and de-duplicates them). */
export function parseTags(text) {
  return String(text).split(",").map((tag) => tag.trim()).filter(Boolean);
}

/** The New form's address prefilled from an experiment's spec. */
export function cloneHref(experimentId) {
  return `/new?from=${experimentId}`;
}

/** A modal asking to confirm deleting the experiment; resolves true when the user confirms. */
function confirmDelete(detail) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm-dialog", id: "delete-dialog", "aria-labelledby": "delete-dialog-title" },
      h("h2", { id: "delete-dialog-title" }, `Delete experiment #${detail.id}?`),
      h("p", {}, "Its cycles, statistics, models and TFLite files are deleted with it. This cannot be undone."),
      h("p", { class: "faint" }, detail.name),
      h(
        "div",
        { class: "row confirm-actions" },
        h("button", { type: "button", class: "btn", id: "delete-cancel", onclick: () => dialog.close("cancel") }, "Keep it"),
        h("button", { type: "button", class: "btn btn-danger", id: "delete-confirm", onclick: () => dialog.close("delete") }, "Delete"),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "delete");
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("#delete-cancel").focus();
  });
}

async function deleteExperiment(detail) {
  if (!(await confirmDelete(detail))) return;
  try {
    await api.del(`/api/experiments/${detail.id}`);
    location.assign("/");
  } catch (error) {
    toast(`Could not delete: ${error.message}`, "error");
  }
}

/** The buttons the page adds beside Rerun/Cancel: the cycles and epochs as CSV/JSON, Clone (to the
 * New form) and Delete (not while running). */
export function manageButtons(detail) {
  return [
    h("a", { class: "btn", id: "export-csv", href: `/api/experiments/${detail.id}/export?format=csv`, download: "", title: "Every cycle and epoch as CSV" }, "CSV"),
    h("a", { class: "btn", id: "export-json", href: `/api/experiments/${detail.id}/export?format=json`, download: "", title: "Every cycle and epoch as JSON" }, "JSON"),
    h("a", { class: "btn", id: "clone", href: cloneHref(detail.id), title: "Open the New form filled in with this experiment's spec" }, "Clone"),
    h(
      "button",
      {
        type: "button",
        class: "btn btn-danger",
        id: "delete",
        disabled: detail.status === "running",
        title: detail.status === "running" ? "Cancel it first: a running experiment cannot be deleted" : "Delete this experiment and everything it recorded",
        onclick: () => deleteExperiment(detail),
      },
      "Delete",
    ),
  ];
}

/** "rerun of #4" and "reruns: #7, #9", each a link; null when neither applies. */
export function lineage(detail) {
  const parts = [];
  if (detail.rerun_of) parts.push(h("span", { id: "rerun-of" }, "Rerun of ", h("a", { href: `/experiments/${detail.rerun_of}` }, `#${detail.rerun_of}`)));
  if (detail.reruns?.length) {
    const links = detail.reruns.flatMap((id, position) => [position ? ", " : "", h("a", { href: `/experiments/${id}` }, `#${id}`)]);
    parts.push(h("span", { id: "reruns" }, "Reruns: ", links));
  }
  return parts.length ? h("span", { class: "lineage" }, parts) : null;
}

/**
 * The notes with an "Edit tags and notes" button (the tags show in the page's meta line); editing swaps
 * in a small form that PATCHes both and calls onSaved(detail) with the experiment as the server returns
 * it. Build it once per page and keep the element: a live page re-rendering its header must not close
 * an open edit.
 */
export function tagsAndNotes(detail, onSaved) {
  const host = h("div", { class: "tags-notes", id: "tags-notes" });
  const show = (current) => {
    replace(
      host,
      h(
        "div",
        { class: "row tags-notes-head" },
        h("button", { type: "button", class: "btn btn-small", id: "edit-tags-notes", onclick: () => edit(current) }, "Edit tags and notes"),
        current.edited_at ? h("span", { class: "faint", title: current.edited_at }, `edited by ${current.edited_by || "anonymous"}`) : null,
      ),
      current.notes ? h("div", { class: "notes", id: "experiment-notes" }, current.notes) : null,
    );
  };
  const edit = (current) => {
    const tags = h("input", { type: "text", id: "edit-tags", value: current.tags.join(", "), autocomplete: "off", "aria-describedby": "edit-error" });
    const notes = h("textarea", { id: "edit-notes", rows: 4, "aria-describedby": "edit-error" });
    notes.value = current.notes;
    const error = h("div", { class: "error", id: "edit-error", role: "alert" });
    const save = async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        const saved = await api.patch(`/api/experiments/${current.id}`, { tags: parseTags(tags.value), notes: notes.value });
        show(saved);
        onSaved?.(saved);
      } catch (failure) {
        error.textContent = failure.message;
      }
    };
    replace(
      host,
      h(
        "form",
        { class: "edit-form", id: "edit-form", onsubmit: save, novalidate: true },
        h("label", { for: "edit-tags" }, "Tags"),
        tags,
        h("div", { class: "help" }, "Comma-separated; at most 20, each up to 40 characters"),
        h("label", { for: "edit-notes" }, "Notes"),
        notes,
        error,
        h(
          "div",
          { class: "row" },
          h("button", { type: "submit", class: "btn btn-primary btn-small", id: "edit-save" }, "Save"),
          h("button", { type: "button", class: "btn btn-small", id: "edit-cancel", onclick: () => show(current) }, "Cancel"),
        ),
      ),
    );
    tags.focus();
  };
  show(detail);
  return host;
}
