// The "check many samples" page: CSV upload (comma or semicolon separated), preview with
// problems, scoring in request-sized chunks, a summary with counts per answer, download.
import { getHealth, getModel, limitsFrom, predict } from "./fetch.js";
import { $, el } from "./dom.js";
import { answerKind, className, featureLabel } from "./format.js";
import { createProblemBox, problemText } from "./problem.js";
import { detectSeparator, parseCsv, toCsv } from "./csv.js";

const CHUNK_ROWS = 200;
const CHUNK_SHARE = 0.85; // of the API's body limit, for wide models
const PREVIEW_ROWS = 10;
const PROBLEMS_LISTED = 20;

let page = null;
let problem = null;
let manifest = null;
let limits = limitsFrom(null);
let upload = null; // {header, rows: [{line, cells, values, problem, result}], missing, ignored}

function findElements() {
  return {
    loading: $("loading"), upload: $("upload"), status: $("status"), fileStatus: $("file-status"),
    file: $("file"), sample: $("sample-link"), preview: $("preview"), summary: $("preview-summary"),
    problems: $("preview-problems"), previewTable: $("preview-table"), score: $("score"),
    progressSection: $("progress-section"), progress: $("progress"), results: $("results"),
    resultsSummary: $("results-summary"), counts: $("results-counts"), download: $("download"),
    resultsTable: $("results-table"),
  };
}

const labelOf = (name) => {
  const f = manifest.features.find((x) => x.name === name);
  return f ? featureLabel(f) : name;
};

// A cell as a value of its feature, or a problem in words. With ";" files, "12,5" reads 12.5.
function checkValue(feature, text, decimalComma) {
  let value = (text ?? "").trim();
  const label = featureLabel(feature);
  if (value === "") return [null, `${label} is empty`];
  if (feature.type === "categorical") {
    const match = feature.categories.find((c) => String(c) === value);
    return match === undefined ? [null, `${label} is not one of the known values`] : [match, null];
  }
  if (decimalComma && /^[-+]?\d*,\d+$/.test(value)) value = value.replace(",", ".");
  const number = Number(value);
  if (!Number.isFinite(number)) return [null, `${label} is not a number`];
  if (feature.type === "integer" && !Number.isInteger(number)) return [null, `${label} must be a whole number`];
  return [number, null];
}

function readRows(table, separator) {
  const header = table[0].map((h) => h.trim());
  const missing = manifest.features.filter((f) => !header.includes(f.name));
  const known = new Set(manifest.features.map((f) => f.name));
  const ignored = header.filter((h) => !known.has(h));
  const decimalComma = separator === ";";
  let commas = 0;
  const rows = table.slice(1).map((cells, i) => {
    const values = {};
    const problems = [];
    for (const feature of manifest.features) {
      const cell = cells[header.indexOf(feature.name)];
      if (decimalComma && /,/.test(cell ?? "")) commas += 1;
      const [value, issue] = checkValue(feature, cell, decimalComma);
      if (issue) problems.push(issue); else values[feature.name] = value;
    }
    if (cells.length !== header.length) problems.unshift(`has ${cells.length} cells, the header has ${header.length}`);
    return { line: i + 1, cells, values, problem: problems.join("; ") || null, result: null };
  });
  return { header, rows, missing, ignored, separator, commas };
}

function fillTable(table, headings, rows) {
  const head = el("tr", {}, ...headings.map((h) => el("th", { scope: "col", text: h })));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

function showPreview() {
  const { header, rows, missing, ignored } = upload;
  const bad = rows.filter((r) => r.problem).length;
  page.summary.textContent = `${rows.length} rows read; ${bad} with problems. Rows with problems are not sent: they are marked in the results.`;
  page.problems.replaceChildren();
  if (missing.length) {
    page.problems.append(el("li", { text: `Missing columns (add them to the file, named exactly as shown): ${missing.map((f) => `${featureLabel(f)} (“${f.name}”)`).join(", ")}.` }));
  }
  if (ignored.length) page.problems.append(el("li", { text: `Columns the model does not use (ignored): ${ignored.join(", ")}.` }));
  const listed = rows.filter((r) => r.problem);
  for (const r of listed.slice(0, PROBLEMS_LISTED)) page.problems.append(el("li", { text: `Row ${r.line}: ${r.problem}.` }));
  if (listed.length > PROBLEMS_LISTED) page.problems.append(el("li", { text: `…and ${listed.length - PROBLEMS_LISTED} more rows with problems (all are in the results).` }));
  const shown = header.slice(0, 6);
  fillTable(page.previewTable, ["Row", ...shown.map(labelOf), "Problem"], rows.slice(0, PREVIEW_ROWS).map((r) =>
    el("tr", { class: r.problem ? "bad-row" : "" }, el("td", { text: String(r.line) }),
      ...shown.map((_, j) => el("td", { text: r.cells[j] ?? "" })), el("td", { text: r.problem || "" }))));
  page.score.disabled = missing.length > 0 || bad === rows.length;
  page.status.textContent = missing.length ? "Add the missing columns to check these samples." : bad === rows.length ? "No row can be checked: see the problems above." : "";
  page.preview.hidden = false;
  page.results.hidden = true;
  page.progressSection.hidden = true;
}

async function onFile() {
  const file = page.file.files[0];
  problem.hide();
  page.results.hidden = true;
  page.preview.hidden = true;
  if (!file) return;
  const text = await file.text();
  const separator = detectSeparator(text);
  const table = parseCsv(text, separator);
  if (table.length < 2) {
    page.fileStatus.textContent = "This file has no rows under its header.";
    return;
  }
  upload = readRows(table, separator);
  page.fileStatus.textContent = separator === ";"
    ? `Read ${file.name}. It uses semicolons between values${upload.commas ? " and commas as decimal marks" : ""}; it was read that way.`
    : `Read ${file.name}.`;
  showPreview();
}

function markFailures(chunk, details) {
  const failed = new Set();
  for (const d of details) {
    const r = chunk[d.row ?? 0];
    if (!r) continue;
    r.problem = (r.problem ? r.problem + "; " : "") + `${labelOf(d.field)}: ${d.message}`;
    failed.add(r);
  }
  return chunk.filter((r) => !failed.has(r));
}

// Rows in request-sized groups, under the API's row cap and body limit.
function* chunks(rows) {
  const maxRows = Math.min(CHUNK_ROWS, limits.maxRows);
  const maxBytes = Math.floor(limits.maxBodyBytes * CHUNK_SHARE);
  let chunk = [], bytes = 0;
  for (const row of rows) {
    const size = JSON.stringify(row.values).length + 1;
    if (chunk.length && (chunk.length >= maxRows || bytes + size > maxBytes)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(row);
    bytes += size;
  }
  if (chunk.length) yield chunk;
}

async function scoreChunk(chunk) {
  let answer = await predict({ instances: chunk.map((r) => r.values) }, { explain: false });
  if (answer.status === 400 && answer.body && answer.body.error && answer.body.error.details.length) {
    chunk = markFailures(chunk, answer.body.error.details);
    if (!chunk.length) return true;
    answer = await predict({ instances: chunk.map((r) => r.values) }, { explain: false });
  }
  if (!answer.ok) {
    problem.show(`${problemText(answer)} Checking stopped; the rows already checked are kept below.`, score);
    return false;
  }
  answer.body.results.forEach((result, i) => (chunk[i].result = result));
  return true;
}

async function score() {
  problem.hide();
  page.score.disabled = true;
  page.progressSection.hidden = false;
  const todo = upload.rows.filter((r) => !r.problem && !r.result); // a retry resumes here
  page.progress.value = 0;
  let finished = true;
  try {
    let sent = 0;
    for (const chunk of chunks(todo)) {
      sent += chunk.length;
      page.status.textContent = `Checking rows… ${sent} of ${todo.length}`;
      finished = await scoreChunk(chunk);
      if (!finished) break;
      page.progress.value = Math.round((100 * sent) / todo.length);
    }
  } finally {
    page.score.disabled = false;
  }
  page.status.textContent = finished ? "Done: the results are below." : "Stopped: see the message.";
  if (finished) page.progress.value = 100;
  showResults(finished);
}

function outcome(r) {
  if (!r.result) return { prediction: "", probability: "", problem: r.problem || "not checked yet", notes: "", names: [] };
  const label = r.result.label ?? r.result.value;
  const p = r.result.probabilities ? r.result.probabilities[label] : null;
  const outside = r.result.warnings.map((w) => w.field);
  const notes = outside.length ? `outside the training range: ${outside.join(", ")}` : "";
  return { prediction: String(label), probability: p === null ? "" : p, problem: "", notes, names: outside };
}

function showCounts(rows) {
  const counts = new Map();
  for (const r of rows.filter((x) => x.result)) {
    const label = r.result.label ?? null;
    if (label !== null) counts.set(String(label), (counts.get(String(label)) || 0) + 1);
  }
  const order = (manifest.labels || []).map(String).filter((l) => counts.has(l));
  const items = order.map((l) => el("li", {}, el("span", { class: `answer-${answerKind(manifest, l)}`, text: className(l) }),
    document.createTextNode(`: ${counts.get(l)} row${counts.get(l) === 1 ? "" : "s"}`)));
  const bad = rows.filter((r) => !r.result).length;
  if (bad) items.push(el("li", { text: `Rows with problems, not checked: ${bad}` }));
  page.counts.replaceChildren(...items);
}

function showResults(finished) {
  const rows = upload.rows;
  const done = rows.filter((r) => r.result).length;
  page.resultsSummary.textContent = done === rows.length ? `${done} of ${rows.length} rows checked.`
    : `${done} of ${rows.length} rows checked; ${rows.length - done} could not be (see why in the table).`;
  showCounts(rows);
  const classification = manifest.task === "classification";
  fillTable(page.resultsTable, ["Row", classification ? "Answer" : "Predicted value", "Problem or note"], rows.map((r) => {
    const o = outcome(r);
    const answer = o.prediction === "" ? "" : classification ? className(o.prediction) : o.prediction;
    const note = o.problem || (o.names.length ? `outside the training range: ${o.names.map(labelOf).join(", ")}` : "");
    return el("tr", { class: o.problem ? "bad-row" : "" }, el("td", { text: String(r.line) }),
      el("td", { class: o.prediction === "" ? "" : `answer-${answerKind(manifest, o.prediction)}`, text: answer }),
      el("td", { text: note }));
  }));
  page.results.hidden = false;
  if (finished) page.results.scrollIntoView({ block: "start" });
}

function downloadResults() {
  const header = [...upload.header, "prediction", "probability", "problem", "notes"];
  const lines = upload.rows.map((r) => {
    const o = outcome(r);
    return [...r.cells, o.prediction, o.probability, o.problem, o.notes];
  });
  saveText(toCsv([header, ...lines]), "results.csv");
}

function saveText(text, name) {
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

async function load() {
  problem.hide();
  page.loading.hidden = false;
  const [model, health] = await Promise.all([getModel(), getHealth()]);
  page.loading.hidden = true;
  if (!model.ok) {
    problem.show(`${problemText(model)} Files cannot be checked until the model's description loads.`, load);
    return;
  }
  manifest = model.body;
  limits = limitsFrom(health);
  const names = manifest.features.map((f) => f.name);
  const sample = toCsv([names, ...(manifest.examples || []).map((e) => names.map((n) => e.features[n]))]);
  page.sample.href = URL.createObjectURL(new Blob([sample], { type: "text/csv" }));
  page.sample.hidden = false;
  page.upload.hidden = false;
  if (page.file.files.length) onFile();
}

function start() {
  page = findElements();
  problem = createProblemBox($("problem"));
  page.file.addEventListener("change", onFile);
  page.score.addEventListener("click", score);
  page.download.addEventListener("click", downloadResults);
  load();
}

start();
