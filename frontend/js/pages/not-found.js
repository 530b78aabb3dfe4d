// The 404 page: names the address that was asked for (as text) and marks the page ready.

import { markNav } from "../components.js";
import { byId, markReady } from "../dom.js";

markNav();
byId("not-found-path").textContent = window.location.pathname;
markReady("not-found");
