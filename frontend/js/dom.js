// Building the document without HTML strings: every value a user typed reaches the page as text.
//
// h("a", {href: "/x", class: "link"}, "text", child) creates the element with createElement, sets
// attributes with setAttribute and appends children as nodes or text nodes. No HTML string is parsed
// anywhere in the dashboard.

/** Append children (nodes, strings, numbers, arrays of those; null/false skipped) as nodes or text. */
export function append(parent, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** An element: h(tag, props, ...children). Props: class, text, dataset, on<event>, properties, attributes. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") element.textContent = String(value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(element.style, value);
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "selected" || key === "indeterminate") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  return append(element, children);
}

/** Remove every child of an element (and return it). */
export function clear(element) {
  while (element.firstChild) element.firstChild.remove();
  return element;
}

/** Replace the children of an element. */
export function replace(element, ...children) {
  return append(clear(element), ...children);
}

/** The element with this id (throws when it is missing: a page bug, not a runtime condition). */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing`);
  return element;
}

/** A function that runs `fn` once `ms` milliseconds passed without another call. */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** Mark the page ready (tests and the speed benchmark wait for it). */
export function markReady(name) {
  document.body.dataset.state = "ready";
  performance.mark(`prunelab:${name}-ready`);
}
