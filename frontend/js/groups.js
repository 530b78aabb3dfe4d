// Dependency groups of a model (POST /api/specs/preview's `groups`): which channels must be removed
// together, how wide each group is, and why a fixed group cannot shrink. Shown on the New page under
// the model summary.

import { h, replace } from "./dom.js";
import * as fmt from "./format.js";

/** A consumer as text: its layer, where the group's channels start in its inputs, a flatten between. */
function consumerText(consumer) {
  const parts = [consumer.layer];
  if (consumer.offset) parts.push(`from input channel ${fmt.int(consumer.offset)}`);
  if (consumer.flatten) parts.push(`through ${consumer.flatten}`);
  return parts.length > 1 ? `${parts[0]} (${parts.slice(1).join(", ")})` : parts[0];
}

const LINE = { class: "faint group-line", style: { fontSize: "11.5px" } };

/** "label: a, b, c" under a group's name; a longer list folds into a <details> that names its length. */
function list(label, names, fold = 4) {
  if (!names.length) return null;
  const text = h("span", { class: "mono" }, names.join(", "));
  if (names.length <= fold) return h("div", LINE, `${label}: `, text);
  return h("details", LINE, h("summary", {}, `${names.length} ${label}`), text);
}

/** The groups as a table: name and the layers it spans, width, and "prunable" or why it is fixed. */
export function groupsTable(groups) {
  return h(
    "table",
    { class: "data compact layers-preview", id: "groups-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Group"), h("th", { class: "num" }, "Width"), h("th", {}, "Can shrink"))),
    h(
      "tbody",
      {},
      groups.map((group) =>
        h(
          "tr",
          { class: group.fixed ? "group-fixed" : "group-prunable", dataset: { group: group.name } },
          h(
            "td",
            {},
            h("span", { class: "mono" }, group.name),
            group.producers.length > 1 || group.producers[0] !== group.name ? list("producers", group.producers, Infinity) : null,
            list("members", group.members),
            list("consumers", group.consumers.map(consumerText)),
          ),
          h("td", { class: "num" }, fmt.int(group.width)),
          h("td", { class: group.fixed ? "group-reason" : null }, group.fixed ? `fixed: ${group.fixed}` : "prunable"),
        ),
      ),
    ),
  );
}

/** One line: how many groups, how many can shrink. */
function summary(groups) {
  const prunable = groups.filter((group) => !group.fixed).length;
  const fixed = groups.length - prunable;
  return `${groups.length} channel group${groups.length === 1 ? "" : "s"}: ${prunable} prunable, ${fixed} fixed`;
}

/**
 * Show a preview's groups below the layers table of the New page's preview card (created on first
 * use after #preview-layers); nothing when the preview has no groups.
 */
export function showGroups(groups) {
  let target = document.getElementById("preview-groups");
  if (!target) {
    target = h("div", { id: "preview-groups", style: { borderTop: "1px solid var(--border)", maxHeight: "320px", overflow: "auto" } });
    document.getElementById("preview-layers")?.after(target);
  }
  if (!groups || !groups.length) {
    replace(target);
    return;
  }
  replace(target, h("div", { class: "help", id: "groups-summary", style: { padding: "8px 16px 0" } }, summary(groups)), groupsTable(groups));
}
