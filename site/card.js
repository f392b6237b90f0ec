// The model card page: what the model does, its data, how good it is (drawn as charts), versions.
import { getModel, problemText, showProblem, hideProblem, formatNumber, percent, el } from "./api.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const TOP_FEATURES = 10;
const $ = (id) => document.getElementById(id);

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

function confusionChart(confusion) {
  const { labels, matrix } = confusion;
  const cell = 90, left = 110, top = 50, n = labels.length;
  const total = matrix.flat().reduce((a, b) => a + b, 0) || 1;
  const parts = [text(left + (n * cell) / 2, 18, "what the model said", { "text-anchor": "middle", class: "axis" }),
    text(14, top + (n * cell) / 2, "the truth", { "text-anchor": "middle", class: "axis", transform: `rotate(-90 14 ${top + (n * cell) / 2})` })];
  labels.forEach((label, j) => parts.push(text(left + j * cell + cell / 2, top - 8, label, { "text-anchor": "middle" })));
  matrix.forEach((row, i) => {
    parts.push(text(left - 8, top + i * cell + cell / 2 + 5, labels[i], { "text-anchor": "end" }));
    row.forEach((count, j) => {
      const right = i === j;
      const strength = 0.15 + 0.85 * (count / total);
      parts.push(svg("rect", { x: left + j * cell, y: top + i * cell, width: cell - 4, height: cell - 4, rx: 4,
        class: `confusion-cell ${right ? "right" : "wrong"}`, "fill-opacity": strength.toFixed(2) },
      svg("title", {}, `${count} cases that were ${labels[i]} and the model called ${labels[j]}`)));
      parts.push(text(left + j * cell + cell / 2 - 2, top + i * cell + cell / 2 + 6, String(count), { "text-anchor": "middle", class: strength > 0.5 ? "count on-dark" : "count" }));
    });
  });
  const size = left + n * cell + 10;
  const sum = matrix.reduce((a, row, i) => a + row[i], 0);
  return chart(size, top + n * cell + 10, `Confusion matrix: ${sum} of ${total} held-out cases answered right`, ...parts);
}

function rocChart(roc, auc) {
  const size = 260, pad = 40;
  const x = (v) => pad + v * size, y = (v) => pad + (1 - v) * size;
  const points = roc.fpr.map((f, i) => `${x(f).toFixed(1)},${y(roc.tpr[i]).toFixed(1)}`).join(" ");
  return chart(size + pad * 2, size + pad * 2, `ROC curve for "${roc.positive}", area under the curve ${formatNumber(auc)}`,
    svg("rect", { x: pad, y: pad, width: size, height: size, class: "frame" }),
    svg("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "chance" }),
    svg("polyline", { points, class: "roc-line" }),
    text(pad + size / 2, pad + size + 30, "false alarms (share of other cases flagged)", { "text-anchor": "middle", class: "axis" }),
    text(14, pad + size / 2, "cases found", { "text-anchor": "middle", class: "axis", transform: `rotate(-90 14 ${pad + size / 2})` }));
}

function importanceChart(features) {
  const top = [...features].filter((f) => f.importance > 0).sort((a, b) => b.importance - a.importance).slice(0, TOP_FEATURES);
  const rowHeight = 28, labelWidth = 190, barWidth = 260;
  const max = top.length ? top[0].importance : 1;
  const rows = top.flatMap((f, i) => [
    text(labelWidth - 8, i * rowHeight + 19, f.label || f.name, { "text-anchor": "end" }),
    svg("rect", { x: labelWidth, y: i * rowHeight + 5, height: rowHeight - 10, width: ((barWidth * f.importance) / max).toFixed(1), class: "importance-bar" },
      svg("title", {}, `${f.label || f.name}: ${percent(f.importance)} of the model's decisions`)),
    text(labelWidth + (barWidth * f.importance) / max + 6, i * rowHeight + 19, percent(f.importance)),
  ]);
  return chart(labelWidth + barWidth + 50, top.length * rowHeight + 6, `The ${top.length} measurements the model relies on most`, ...rows);
}

function metricRows(m, manifest) {
  const rows = [];
  const add = (name, value, meaning) => rows.push(el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: value }), el("td", { text: meaning })));
  if (manifest.task === "classification") {
    add("Accuracy", percent(m.accuracy), "share of unseen cases it answered right");
    add("Balanced accuracy", percent(m.balanced_accuracy), "the same, giving each class equal weight");
    if (m.roc_auc !== undefined) add("ROC AUC", formatNumber(m.roc_auc), "1 is perfect ranking, 0.5 is guessing");
    for (const [label, s] of Object.entries(m.per_class || {})) {
      add(`Precision (${label})`, percent(s.precision), `when it says “${label}”, how often that is right`);
      add(`Recall (${label})`, percent(s.recall), `of the real “${label}” cases, how many it finds`);
    }
  } else {
    add("R²", formatNumber(m.r2), "share of the variation it explains (1 is perfect)");
    add("Mean absolute error", formatNumber(m.mae), "typical size of its mistakes");
    add("RMSE", formatNumber(m.rmse), "root mean squared error");
  }
  return rows;
}

function technical(manifest) {
  const items = [
    ["Model", `${manifest.name} ${manifest.version} (${manifest.estimator})`],
    ["Chosen settings", JSON.stringify(manifest.params || (manifest.model_selection || {}).chosen || {})],
    ["Written by", Object.entries(manifest.versions || {}).map(([k, v]) => `${k} ${v}`).join(", ")],
    ["Artifact", `${manifest.artifact.file}, ${formatNumber(manifest.artifact.bytes)} bytes`],
    ["SHA-256", manifest.artifact.sha256],
  ];
  if (manifest.model_selection) items.push(["How it was chosen", `${manifest.model_selection.method}; ${manifest.model_selection.results.length} settings tried, best ${manifest.model_selection.scoring} ${formatNumber(manifest.model_selection.best_score)}`]);
  return items.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v, class: k === "SHA-256" ? "mono" : "" })]);
}

function dataText(d) {
  if (!d) return "Not described.";
  const parts = [d.source || `Reference data ${d.reference}`, `${d.rows} rows`];
  if (d.class_balance) parts.push(Object.entries(d.class_balance).map(([k, v]) => `${v} ${k}`).join(", "));
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
  if (m) {
    $("metrics-intro").textContent = `Measured on ${m.rows} cases: ${m.data}.`;
    $("metrics").replaceChildren(el("tbody", {}, ...metricRows(m, manifest)));
  } else {
    $("metrics-intro").textContent = "No measurements: the model was packaged without a target column.";
  }
  const confusion = m && m.confusion_matrix;
  $("confusion-heading").hidden = !confusion;
  if (confusion) $("confusion").replaceChildren(confusionChart(confusion));
  const roc = m && m.roc_curve;
  $("roc-heading").hidden = !roc;
  if (roc) {
    $("roc-intro").textContent = `How many “${roc.positive}” cases it finds (up) for how many false alarms (right), over every threshold. The dashed line is guessing.`;
    $("roc").replaceChildren(rocChart(roc, m.roc_auc));
  }
  if (manifest.features.some((f) => f.importance > 0)) $("importance").replaceChildren(importanceChart(manifest.features));
  $("technical").replaceChildren(...technical(manifest));
  $("card").hidden = false;
}

async function start() {
  hideProblem();
  const model = await getModel();
  $("status").textContent = "";
  if (!model.ok) {
    showProblem(problemText(model), start);
    return;
  }
  render(model.body);
}

start();
