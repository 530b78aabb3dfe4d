// The audit trail (GET /api/audit, admins): newest first, 100 a page.

import { api, query } from "../api.js";
import { byId, h, markReady, replace } from "../dom.js";
import { markNav, notice } from "../components.js";

const LIMIT = 100;
let offset = 0;

async function load() {
  const root = byId("audit-root");
  try {
    const page = await api.get(`/api/audit${query({ limit: LIMIT, offset })}`);
    const rows = page.items.map((event) =>
      h(
        "tr",
        {},
        h("td", {}, event.at),
        h("td", {}, event.actor || "—"),
        h("td", {}, event.action),
        h("td", {}, event.target),
        h("td", {}, event.address),
        h("td", {}, JSON.stringify(event.detail)),
      ),
    );
    const head = ["When", "Who", "What", "Target", "Address", "Detail"].map((label) => h("th", {}, label));
    const more = offset + LIMIT < page.total;
    replace(
      root,
      h("table", { class: "table" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)),
      h("p", {}, `${page.total} events. `, more ? h("button", { class: "btn btn-small", onclick: () => {
        offset += LIMIT;
        load();
      } }, "Older") : null),
    );
  } catch (error) {
    replace(root, notice("error", error.message));
  }
}

markNav();
load().finally(() => markReady("audit"));
