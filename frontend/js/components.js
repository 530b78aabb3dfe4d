// Small pieces every page uses: status badges, progress bars, tag chips, empty states, toasts.

import { api } from "./api.js";
import { h } from "./dom.js";
import { cycleProgress, relativeTime } from "./format.js";

const STATUS_LABELS = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** True for an experiment that can still change. */
export function isLive(status) {
  return status === "queued" || status === "running";
}

/** A coloured badge for an experiment's state ("Cancelling" while a cancel request is pending). */
export function statusBadge(status, cancelRequested = false) {
  const cancelling = cancelRequested && isLive(status);
  const label = cancelling ? "Cancelling" : STATUS_LABELS[status] || status;
  return h(
    "span",
    { class: ["badge", `badge-${cancelling ? "cancelling" : status}`], dataset: { status } },
    h("span", { class: "badge-dot", "aria-hidden": "true" }),
    label,
  );
}

/**
 * Where a queued experiment stands: "Waiting for a worker", or "Re-queued 2× (last 3 min ago) ·
 * waiting for a worker" once the worker's sweep sent it again (its message was lost or its worker
 * died). Takes an experiment summary or detail (`requeues`, `requeued_at`).
 */
export function queueState(item) {
  if (!item.requeues) return "Waiting for a worker";
  const last = item.requeued_at ? ` (last ${relativeTime(item.requeued_at).text})` : "";
  return `Re-queued ${item.requeues}×${last} · waiting for a worker`;
}

/**
 * Where a running experiment stands, from its summary or detail: "cycle 3 (stops when nothing is
 * removed or after 15 cycles)", the share of its planned epochs as the title (the list and the
 * experiment page say the same).
 */
export function cycleProgressLabel(item) {
  const percent = Math.round((Number(item.progress) || 0) * 100);
  return h("span", { class: "progress-label", title: `${percent} % of the planned epochs` }, cycleProgress(item.cycles_done, item.max_cycles));
}

/** A progress bar (0..1) with an accessible label. */
export function progressBar(fraction, label = "") {
  const value = Math.max(0, Math.min(1, Number(fraction) || 0));
  const percent = Math.round(value * 100);
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(percent), "aria-label": label || `${percent} %` },
    h("div", { class: "progress-fill", style: { width: `${value * 100}%` } }),
  );
}

/** Tag chips; with `onSelect`, each chip is a button that filters by its tag. */
export function tagChips(tags, onSelect) {
  return h(
    "span",
    { class: "chips" },
    (tags || []).map((tag) =>
      onSelect
        ? h("button", { type: "button", class: "chip", title: "Show experiments with this tag", onclick: () => onSelect(tag) }, tag)
        : h("span", { class: "chip" }, tag),
    ),
  );
}

/** A friendly empty state: a title, an explanation and optional actions. */
export function emptyState(title, text, ...actions) {
  return h(
    "div",
    { class: "empty" },
    h("div", { class: "empty-title" }, title),
    text ? h("p", { class: "empty-text" }, text) : null,
    actions.length ? h("div", { class: "empty-actions" }, actions) : null,
  );
}

/** An inline notice (kind: info, error, warning). */
export function notice(kind, ...children) {
  return h("div", { class: ["notice", `notice-${kind}`], role: kind === "error" ? "alert" : "status" }, children);
}

/** A short message in the corner that goes away by itself. */
export function toast(message, kind = "info") {
  let host = document.getElementById("toasts");
  if (!host) {
    host = h("div", { id: "toasts", class: "toasts", "aria-live": "polite" });
    document.body.append(host);
  }
  const item = h("div", { class: ["toast", `toast-${kind}`] }, message);
  host.append(item);
  setTimeout(() => item.classList.add("toast-leaving"), 3600);
  setTimeout(() => item.remove(), 4000);
}

/** A labelled number for a summary strip. */
export function stat(label, value, detail = "", title = "") {
  return h(
    "div",
    { class: "stat", title: title || null },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, value),
    detail ? h("div", { class: "stat-detail" }, detail) : null,
  );
}

/** A segmented toggle: options [{value, label}], calls onChange(value). */
export function segmented(name, options, current, onChange) {
  return h(
    "div",
    { class: "segmented", role: "radiogroup", "aria-label": name },
    options.map((option) =>
      h(
        "button",
        {
          type: "button",
          role: "radio",
          "aria-checked": String(option.value === current),
          class: option.value === current ? "active" : null,
          onclick: (event) => {
            for (const sibling of event.currentTarget.parentElement.children) {
              sibling.classList.toggle("active", sibling === event.currentTarget);
              sibling.setAttribute("aria-checked", String(sibling === event.currentTarget));
            }
            onChange(option.value);
          },
        },
        option.label,
      ),
    ),
  );
}

/** Highlight the nav link of the current page (body[data-page]). */
export function markNav() {
  const current = document.body.dataset.page;
  for (const link of document.querySelectorAll(".nav-links a")) {
    if (link.dataset.nav === current) link.setAttribute("aria-current", "page");
  }
  if (current !== "signin") showIdentity();
}

/** Who is signed in (from GET /api/me), an Audit link for admins, and Sign out for a browser session. */
async function showIdentity() {
  const user = document.getElementById("nav-user");
  const signout = document.getElementById("nav-signout");
  const audit = document.getElementById("nav-audit");
  if (!user || !signout) return;
  let me;
  try {
    me = await api.get("/api/me");
  } catch {
    return;
  }
  user.textContent = `${me.name} · ${me.role}`;
  user.hidden = false;
  if (audit) audit.hidden = me.role !== "admin";
  if (me.via !== "session") return;
  signout.hidden = false;
  signout.addEventListener("click", async () => {
    await api.post("/api/signout").catch(() => null);
    location.assign("/signin");
  });
}
