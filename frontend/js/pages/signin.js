// Sign in with an API token (POST /api/signin sets the session cookies), or sign out.
// After signing in, the browser goes on to ?next= (a path on this server) or the experiment list.

import { api } from "../api.js";
import { byId, markReady, replace } from "../dom.js";
import { markNav, notice } from "../components.js";

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.includes("\\") ? next : "/";
}

async function showWho() {
  try {
    const me = await api.get("/api/me");
    byId("signin-who").textContent = `Signed in as ${me.name} (${me.role}).`;
    byId("signin-state").hidden = false;
  } catch {
    byId("signin-state").hidden = true;
  }
}

byId("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = byId("signin-message");
  const button = byId("signin-submit");
  button.disabled = true;
  try {
    await api.post("/api/signin", { token: byId("signin-token").value.trim() });
    location.assign(nextPage());
  } catch (error) {
    replace(message, notice("error", error.message));
    button.disabled = false;
  }
});

byId("signout").addEventListener("click", async () => {
  await api.post("/api/signout").catch(() => null);
  replace(byId("signin-message"), notice("info", "Signed out."));
  byId("signin-state").hidden = true;
});

markNav();
showWho().finally(() => markReady("signin"));
