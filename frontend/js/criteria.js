// Pruning criteria's labels, read from the API's OpenAPI schema: each criterion's schema title is its
// label, defined once with the criterion in prunespec/criteria.py. Load once per page, then look up.

let labels = {};
let loading = null;

/** Fetch the labels (once per page); resolves even when the schema cannot be read (types shown bare). */
export function loadCriterionLabels() {
  loading ??= fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : {}))
    .then((doc) => {
      const found = {};
      for (const [name, schema] of Object.entries(doc?.components?.schemas || {})) {
        const type = schema?.properties?.type?.const ?? schema?.properties?.type?.default;
        if (/Criterion(-Input|-Output)?$/.test(name) && typeof type === "string") found[type] = schema.title || type;
      }
      labels = found;
      return labels;
    })
    .catch(() => labels);
  return loading;
}

/** A criterion type's label ("apoz" → "APoZ (Hu et al.)"), or the type itself before loading. */
export function criterionLabel(type) {
  return labels[type] || type;
}

/** [type, label] pairs of every criterion, in the API's order, for a select. */
export function criterionOptions() {
  return Object.entries(labels);
}
