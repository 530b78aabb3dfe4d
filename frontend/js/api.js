// The REST API from the browser: JSON in, JSON out, errors as ApiError.

/** A failed request: its HTTP status, the decoded body and, for 422s, the invalid fields. */
export class ApiError extends Error {
  constructor(status, body) {
    super(ApiError.describe(status, body));
    this.status = status;
    this.body = body;
    /** [{loc, field, msg, type}] for a 422, else []. */
    this.issues = status === 422 && Array.isArray(body?.detail) ? body.detail : [];
  }

  static describe(status, body) {
    if (typeof body?.detail === "string") return body.detail;
    if (Array.isArray(body?.detail)) {
      return body.detail.map((issue) => (issue.field ? `${issue.field}: ${issue.msg}` : issue.msg)).join("; ");
    }
    if (status === 0) return "The server cannot be reached.";
    return `The server answered ${status}.`;
  }
}

async function request(method, path, { json, text, contentType, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    // the session's CSRF token (double submit: the server compares it with its cookie's session)
    const csrf = document.cookie.split("; ").find((part) => part.startsWith("prunelab_csrf="));
    if (csrf) headers["X-CSRF-Token"] = decodeURIComponent(csrf.slice("prunelab_csrf=".length));
  }
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (text !== undefined) {
    headers["Content-Type"] = contentType || "text/yaml";
    body = text;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, null);
  }
  const type = response.headers.get("content-type") || "";
  const payload = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

export const api = {
  get: (path, options) => request("GET", path, options),
  // Every POST declares JSON, an empty object when there is nothing to send: the server refuses
  // other media types so that no cross-site form can trigger a change (backend/api/security.py).
  post: (path, json = {}, options) => request("POST", path, { ...options, json }),
  postText: (path, text, options) => request("POST", path, { ...options, text }),
  patch: (path, json, options) => request("PATCH", path, { ...options, json }),
  del: (path, options) => request("DELETE", path, options),
};

/** A query string from an object; arrays repeat the key, empty values are left out. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    for (const one of Array.isArray(value) ? value : [value]) search.append(key, String(one));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
