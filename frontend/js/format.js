// Numbers, times and reductions as a researcher reads them.

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

/** 266,610 */
export function int(value) {
  return Number.isFinite(value) ? integer.format(value) : "–";
}

/** 267K, 1.2M */
export function compact(value) {
  return Number.isFinite(value) ? compactFormat.format(value) : "–";
}

/** A metric to 4 significant digits (accuracy as a percentage). */
export function metric(value, name) {
  if (!Number.isFinite(value)) return "–";
  if (name === "accuracy") return `${(value * 100).toFixed(2)} %`;
  return Number(value.toPrecision(4)).toString();
}

/** A float to `digits` significant digits. */
export function num(value, digits = 4) {
  if (!Number.isFinite(value)) return "–";
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return int(value);
  return Number(value.toPrecision(digits)).toString();
}

/** The reduction from `before` to `after`: {text: "−95.3 %", factor: "×21.4", title}. */
export function reduction(before, after) {
  if (!Number.isFinite(before) || !Number.isFinite(after) || before <= 0) return null;
  const percent = (1 - after / before) * 100;
  const factor = after > 0 ? before / after : Infinity;
  return {
    text: `${percent >= 0 ? "−" : "+"}${Math.abs(percent).toFixed(1)} %`,
    factor: Number.isFinite(factor) ? `×${factor >= 100 ? factor.toFixed(0) : factor.toFixed(1)}` : "",
    title: `${int(before)} → ${int(after)}`,
    percent,
  };
}

/** "3 min ago", "2 days ago" (and the absolute time for a title). */
export function relativeTime(iso) {
  if (!iso) return { text: "–", title: "" };
  const then = new Date(iso);
  const seconds = Math.round((Date.now() - then.getTime()) / 1000);
  const title = then.toLocaleString();
  const units = [
    [60, "s"],
    [60, "min"],
    [24, "h"],
    [30, "d"],
    [12, "mo"],
  ];
  let value = Math.max(seconds, 0);
  for (const [size, unit] of units) {
    if (value < size) return { text: unit === "s" ? "just now" : `${value} ${unit} ago`, title };
    value = Math.floor(value / size);
  }
  return { text: `${value} y ago`, title };
}

/** Bytes as KiB/MiB. */
export function bytes(value) {
  if (!Number.isFinite(value)) return "–";
  if (value < 1024) return `${value} B`;
  if (value < 1024 ** 2) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 ** 2).toFixed(1)} MiB`;
}

/** Seconds as "1 h 02 min", "3 min 05 s", "12.3 s". */
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Widths as "fc1 12 · fc2 40 · fc3 10" (the output layer included). */
export function widths(map) {
  if (!map) return "–";
  const entries = Object.entries(map);
  return entries.length ? entries.map(([name, width]) => `${name} ${int(width)}`).join(" · ") : "–";
}

/**
 * A cycle as every selector and table names it: "cycle 5 · final (kept)", "cycle 6 · rejected", "cycle 4".
 * `marks` is the figure index's `cycle_marks` (the words the charts use, defined once on the server).
 */
export function cycleLabel(index, marks) {
  const words = marks?.[String(index)];
  return words ? `cycle ${index} · ${words}` : `cycle ${index}`;
}

/** "cycle 3 (stops when nothing is removed or after 15 cycles)": where a running experiment stands. */
export function cycleProgress(cyclesDone, maxCycles) {
  const current = Number.isInteger(cyclesDone) ? cyclesDone : 0;
  return Number.isInteger(maxCycles)
    ? `cycle ${current} (stops when nothing is removed or after ${maxCycles} cycles)`
    : `cycle ${current}`;
}
