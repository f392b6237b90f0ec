// Numbers and names as a person reads them. Pure functions, nothing on import.

// A number with at most `figures` significant figures, no float noise ("86.21", not "86.21000000000001").
export function rounded(value, figures = 4) {
  if (typeof value !== "number" || !Number.isFinite(value)) return value;
  return Number(value.toPrecision(figures));
}

export function formatNumber(value, figures = 4) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  const r = rounded(value, figures);
  return Math.abs(r) >= 1000 ? r.toLocaleString("en", { maximumFractionDigits: 2 }) : String(r);
}

export const percent = (p) => `${Math.round(p * 100)}%`;

// A share as "about 1 in 8" (for 0 < p < 1).
export function oneIn(p) {
  return `about 1 in ${Math.max(2, Math.round(1 / p))}`;
}

export const featureLabel = (f) => f.label || f.name;
export const unitText = (f) => (f.unit && f.unit !== "ratio" ? ` ${f.unit}` : "");

// A class label as a person reads it: "class 2" for a bare number, else the label itself.
export function className(label) {
  const text = String(label);
  return /^-?\d+(\.\d+)?$/.test(text) ? `class ${text}` : text;
}

// How the pages colour an answer: by the manifest's positive label, never by its name.
// Only a model with two answers has a "positive" one worth a colour; others stay neutral.
export function answerKind(manifest, label) {
  const two = (manifest.labels || []).length === 2;
  if (manifest.task !== "classification" || manifest.positive_label === undefined || !two) return "neutral";
  return String(label) === String(manifest.positive_label) ? "positive" : "negative";
}

// Whether the manifest's metrics were measured on data kept aside from training.
export function heldOut(manifest) {
  const m = manifest.metrics;
  if (!m) return false;
  if (typeof m.held_out === "boolean") return m.held_out;
  if (manifest.training_data && manifest.training_data.split) return true;
  return /^held[- ]out/i.test(m.data || "");
}
