// The model card page: what the model does, its data, how good it is and on what data
// (drawn as charts readable on a phone), versions.
import { getModel } from "./fetch.js";
import { $, el } from "./dom.js";
import { className, featureLabel, formatNumber, heldOut, percent } from "./format.js";
import { createProblemBox, problemText } from "./problem.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const TOP_FEATURES = 10;
// Charts are drawn at most this wide (in their own units), with text of at least FONT:
// at 360 px a chart shrinks to about 328 px, so text stays at 12 px or more.
const WIDTH = 340;
const FONT = 13;
const CHARS_PER_LINE = 38;

let problem = null;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

function chart(width, height, label, ...children) {
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart-svg" },
    svg("title", {}, label), ...children);
}

const text = (x, y, content, attrs = {}) => svg("text", { x, y, ...attrs }, content);

// A label cut to `chars` characters with "…", its full text in a tooltip.
function short(content, chars, x, y, attrs = {}) {
  const cut = content.length > chars ? `${content.slice(0, chars - 1)}…` : content;
  const node = text(x, y, cut, attrs);
  if (cut !== content) node.append(svg("title", {}, content));
  return node;
}

// Words wrapped into lines of at most `chars` characters.
function wrap(content, chars) {
  const lines = [];
  for (const word of content.split(" ")) {
    const last = lines[lines.length - 1];
    if (last !== undefined && (last + " " + word).length <= chars) lines[lines.length - 1] = last + " " + word;
    else lines.push(word);
  }
  return lines;
}

function confusionChart(confusion, where) {
  const labels = confusion.labels.map(className);
  const { matrix } = confusion;
  const n = labels.length;
  const left = 96, top = 56;
  const cell = Math.min(90, Math.floor((WIDTH - left - 6) / n));
  const chars = Math.max(4, Math.floor(cell / 8));
  const total = matrix.flat().reduce((a, b) => a + b, 0) || 1;
  const parts = [text(left + (n * cell) / 2, 18, "what the model said", { "text-anchor": "middle", class: "axis" }),
    text(16, top + (n * cell) / 2, "the truth", { "text-anchor": "middle", class: "axis", transform: `rotate(-90 16 ${top + (n * cell) / 2})` })];
  labels.forEach((label, j) => parts.push(short(label, chars, left + j * cell + cell / 2, top - 10, { "text-anchor": "middle" })));
  matrix.forEach((row, i) => {
    parts.push(short(labels[i], Math.floor((left - 12) / 7.5), left - 8, top + i * cell + cell / 2 + 5, { "text-anchor": "end" }));
    row.forEach((count, j) => {
      const right = i === j;
      const strength = 0.15 + 0.85 * (count / total);
      parts.push(svg("rect", { x: left + j * cell, y: top + i * cell, width: cell - 4, height: cell - 4, rx: 4,
        class: `confusion-cell ${right ? "right" : "wrong"}`, "fill-opacity": strength.toFixed(2) },
      svg("title", {}, `${count} cases that were ${labels[i]} and the model called ${labels[j]}`)));
      parts.push(text(left + j * cell + cell / 2 - 2, top + i * cell + cell / 2 + 6, String(count), { "text-anchor": "middle", class: strength > 0.5 ? "count on-dark" : "count" }));
    });
  });
  const sum = matrix.reduce((a, row, i) => a + row[i], 0);
  return chart(Math.max(left + n * cell + 6, 200), top + n * cell + 6, `Confusion matrix: ${sum} of ${total} ${where} answered right`, ...parts);
}

function rocChart(roc, auc) {
  const left = 56, top = 12, size = WIDTH - left - 24, bottom = 52;
  const x = (v) => left + v * size, y = (v) => top + (1 - v) * size;
  const points = roc.fpr.map((f, i) => `${x(f).toFixed(1)},${y(roc.tpr[i]).toFixed(1)}`).join(" ");
  const ticks = [0, 0.25, 0.5, 0.75, 1].flatMap((v) => [
    svg("line", { x1: x(v), y1: y(0), x2: x(v), y2: y(0) + 5, class: "tick" }),
    text(x(v), y(0) + 20, percent(v), { "text-anchor": "middle" }),
    svg("line", { x1: x(0) - 5, y1: y(v), x2: x(0), y2: y(v), class: "tick" }),
    text(x(0) - 8, y(v) + 5, percent(v), { "text-anchor": "end" }),
  ]);
  return chart(WIDTH, top + size + bottom, `ROC curve for "${className(roc.positive)}", area under the curve ${formatNumber(auc)}`,
    svg("rect", { x: left, y: top, width: size, height: size, class: "frame" }),
    svg("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "chance" }),
    svg("polyline", { points, class: "roc-line" }), ...ticks,
    text(left + size / 2, top + size + 44, "false alarms (share of other cases)", { "text-anchor": "middle", class: "axis" }),
    text(14, top + size / 2, "cases found", { "text-anchor": "middle", class: "axis", transform: `rotate(-90 14 ${top + size / 2})` }));
}

// One row per measurement: its name (wrapped) on top, a bar and its share below.
function importanceChart(features) {
  const top = [...features].filter((f) => f.importance > 0).sort((a, b) => b.importance - a.importance).slice(0, TOP_FEATURES);
  const line = FONT + 4, barHeight = 14, barWidth = WIDTH - 76;
  const max = top.length ? top[0].importance : 1;
  const parts = [];
  let yPos = 0;
  for (const f of top) {
    const lines = wrap(featureLabel(f), CHARS_PER_LINE);
    lines.forEach((l, k) => parts.push(text(0, yPos + line * (k + 1) - 3, l)));
    yPos += line * lines.length + 2;
    const width = (barWidth * f.importance) / max;
    parts.push(svg("rect", { x: 0, y: yPos, height: barHeight, width: width.toFixed(1), class: "importance-bar" },
      svg("title", {}, `${featureLabel(f)}: ${percent(f.importance)} of the model's total importance`)));
    parts.push(text(width + 6, yPos + barHeight - 2, f.importance < 0.005 ? "under 1%" : percent(f.importance)));
    yPos += barHeight + 10;
  }
  return chart(WIDTH, yPos, `The ${top.length} measurements the model relies on most, with their share of its total importance`, ...parts);
}

function metricRows(m, manifest, where) {
  const rows = [];
  const add = (name, value, meaning) => rows.push(el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: value }), el("td", { text: meaning })));
  if (manifest.task === "classification") {
    add("Accuracy", percent(m.accuracy), `share of the ${where} it answered right`);
    add("Balanced accuracy", percent(m.balanced_accuracy), "the same, giving each class equal weight");
    if (m.roc_auc !== undefined) add("ROC AUC", formatNumber(m.roc_auc), "how well it ranks cases: 1 is perfect, 0.5 is guessing");
    for (const [label, s] of Object.entries(m.per_class || {})) {
      const name = className(label);
      add(`Precision (${name})`, percent(s.precision), `when it says “${name}”, how often that is right`);
      add(`Recall (${name})`, percent(s.recall), `of the real “${name}” cases (${s.support}), how many it finds`);
    }
  } else {
    add("R²", formatNumber(m.r2), "share of the variation it explains (1 is perfect)");
    add("Mean absolute error", formatNumber(m.mae), "typical size of its mistakes, in the answer's units");
    add("RMSE", formatNumber(m.rmse), "root mean squared error: like the above, weighing big mistakes more");
  }
  return rows;
}

function technical(manifest) {
  const settings = manifest.params || (manifest.model_selection || {}).chosen || {};
  const items = [["Model", `${manifest.name} ${manifest.version} (${manifest.estimator})`]];
  if (Object.keys(settings).length) {
    items.push(["Chosen settings", Object.entries(settings).map(([k, v]) => `${k} = ${v === null ? "none" : v}`).join(", ")]);
  }
  items.push(
    ["Written by", Object.entries(manifest.versions || {}).map(([k, v]) => `${k} ${v}`).join(", ")],
    ["Artifact", `${manifest.artifact.file}, ${formatNumber(manifest.artifact.bytes)} bytes`],
    ["SHA-256", manifest.artifact.sha256]);
  if (manifest.model_selection) items.push(["How it was chosen", `${manifest.model_selection.method}; ${manifest.model_selection.results.length} settings tried, best ${manifest.model_selection.scoring} ${formatNumber(manifest.model_selection.best_score)}`]);
  return items.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v, class: k === "SHA-256" ? "mono" : "" })]);
}

function dataText(d) {
  if (!d) return "Not described.";
  const parts = [d.source || `Reference data ${d.reference}`, `${d.rows} rows`];
  if (d.class_balance) parts.push(Object.entries(d.class_balance).map(([k, v]) => `${v} ${className(k)}`).join(", "));
  if (d.split) parts.push(`${d.split.train_rows} used for learning, ${d.split.test_rows} kept aside to test it (stratified, seed ${d.split.seed})`);
  return parts.join("; ") + ".";
}

function render(manifest) {
  $("title").textContent = `About the model: ${manifest.title || manifest.name}`;
  $("description").textContent = manifest.description || "";
  $("intended-use").textContent = manifest.intended_use ? `Intended use: ${manifest.intended_use}` : "";
  $("limitations").replaceChildren(...(manifest.limitations || []).map((l) => el("li", { text: l })));
  $("data").textContent = dataText(manifest.training_data);
  const m = manifest.metrics;
  const unseen = heldOut(manifest);
  const where = unseen ? "unseen test cases" : "reference cases";
  if (m) {
    $("metrics-intro").textContent = unseen
      ? `Measured on ${m.rows} cases kept aside and never seen in training (${m.data}).`
      : `Measured on the ${m.rows} cases of the reference data, not on cases kept aside from training. If the model learned from these cases, it will do worse on new ones than these figures say.`;
    $("metrics").replaceChildren(el("tbody", {}, ...metricRows(m, manifest, where)));
  } else {
    $("metrics-intro").textContent = "Not measured: the model was packaged without a target column, so how good it is is not known.";
    $("metrics").replaceChildren();
  }
  const confusion = m && m.confusion_matrix;
  $("confusion-heading").hidden = !confusion;
  $("confusion-heading").textContent = unseen ? "Right and wrong answers on unseen test cases" : "Right and wrong answers on the reference data";
  $("confusion").replaceChildren(...(confusion ? [confusionChart(confusion, where)] : []));
  const roc = m && m.roc_curve;
  $("roc-heading").hidden = !roc;
  $("roc-intro").hidden = !roc;
  if (roc) {
    $("roc-intro").textContent = `How many “${className(roc.positive)}” cases it finds (up) for how many false alarms (right), over every threshold, on the ${where}. The dashed line is guessing.`;
    $("roc").replaceChildren(rocChart(roc, m.roc_auc));
  }
  const important = manifest.features.some((f) => f.importance > 0);
  $("importance-intro").textContent = important
    ? "Each measurement's share of the model's total importance: all of them add up to 100%."
    : "Not known for this model.";
  if (important) $("importance").replaceChildren(importanceChart(manifest.features));
  $("technical").replaceChildren(...technical(manifest));
  $("card").hidden = false;
}

async function load() {
  problem.hide();
  $("status").textContent = "Loading the model card…";
  const model = await getModel();
  $("status").textContent = "";
  if (!model.ok) {
    problem.show(problemText(model), load, { after: model.retryAfter });
    return;
  }
  render(model.body);
}

function start() {
  problem = createProblemBox($("problem"));
  load();
}

start();
