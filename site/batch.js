// The "check many samples" page: CSV upload (comma or semicolon separated), preview with
// problems, scoring in request-sized chunks with a few requests in flight, a summary with
// counts per answer and the first rows, and the whole result as a download in the file's
// own dialect. Big files stay small in memory: values go into typed columns, and the
// file's own text is read again, row by row, only to write the download.
import { getHealth, getModel, limitsFrom, predict } from "./fetch.js";
import { $, el } from "./dom.js";
import { answerKind, className, featureLabel } from "./format.js";
import { createProblemBox, problemText } from "./problem.js";
import { csvLine, detectSeparator, records, toCsv } from "./csv.js";

const BODY_SHARE = 0.85; // of the API's body limit, for headroom
const IN_FLIGHT = 4;
const PREVIEW_ROWS = 10;
const RESULT_ROWS = 20;
const PROBLEMS_LISTED = 20;
const BLOB_LINES = 5000;

let page = null;
let problem = null;
let manifest = null;
let health = null; // the GET /api/health sent when the page opens (it wakes the model), then its limits
let limits = limitsFrom(null);
let upload = null;
let running = null; // the AbortController of the scoring in flight

function findElements() {
  return {
    loading: $("loading"), upload: $("upload"), status: $("status"), fileStatus: $("file-status"),
    file: $("file"), sample: $("sample-link"), preview: $("preview"), summary: $("preview-summary"),
    problems: $("preview-problems"), previewTable: $("preview-table"), score: $("score"), stop: $("stop"),
    progressSection: $("progress-section"), progress: $("progress"), results: $("results"),
    resultsSummary: $("results-summary"), counts: $("results-counts"), download: $("download"),
    resultsTable: $("results-table"), resultsShown: $("results-shown"), columns: $("download-columns"),
  };
}

const isNumeric = (f) => f.type === "number" || f.type === "integer";
const labelOf = (name) => {
  const f = manifest.features.find((x) => x.name === name);
  return f ? featureLabel(f) : name;
};
// Whether a row's answers come from one decision tree, whose score is a leaf's share.
const leafShare = () => /^DecisionTree/.test(manifest.estimator || "");
const scoreColumn = () => (leafShare() ? "share of similar training samples with this answer"
  : "model score for this answer (0 to 1; not how often it is right)");

// A cell as a value of its feature (null: not measured), or a problem in words.
// With ";" files, "12,5" reads 12.5.
function checkValue(feature, text, decimalComma) {
  let value = (text ?? "").trim();
  const label = featureLabel(feature);
  if (value === "") return feature.optional ? [null, null] : [null, `${label} is empty`];
  if (feature.type === "text") {
    return value.length > feature.max_length ? [null, `${label} is longer than ${feature.max_length} characters`] : [text, null];
  }
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

// The file's header and rows: typed columns of values, problems by row, offsets to read
// a row's cells again.
function readRows(text, separator) {
  const all = records(text, separator);
  const first = all.next();
  if (first.done) return null;
  const header = first.value.cells.map((h) => h.trim());
  const seen = new Set();
  const duplicated = [...new Set(header.filter((h) => seen.has(h) || !seen.add(h)))].filter((h) => h !== "");
  const missing = manifest.features.filter((f) => !header.includes(f.name));
  const known = new Set(manifest.features.map((f) => f.name));
  const ignored = header.filter((h) => !known.has(h));
  const used = manifest.features.filter((f) => header.includes(f.name)).map((f) => [f, header.indexOf(f.name)]);
  const decimalComma = separator === ";";
  const starts = [], ends = [], problems = new Map();
  const columns = new Map(manifest.features.map((f) => [f.name, []]));
  let commas = 0;
  for (const { cells, start, end } of all) {
    const row = starts.length;
    starts.push(start);
    ends.push(end);
    const found = [];
    if (cells.length !== header.length) found.push(`has ${cells.length} cells, the header has ${header.length}`);
    for (const [feature, index] of used) {
      const cell = cells[index];
      if (decimalComma && isNumeric(feature) && cell && cell.includes(",")) commas += 1;
      const [value, issue] = checkValue(feature, cell, decimalComma);
      if (issue) found.push(issue);
      columns.get(feature.name).push(value);
    }
    if (found.length) problems.set(row, found.join("; "));
  }
  const n = starts.length;
  const typed = new Map(manifest.features.map((f) => {
    const values = columns.get(f.name);
    if (!isNumeric(f)) return [f.name, values.length ? values : new Array(n).fill(null)];
    const column = new Float64Array(n).fill(NaN); // NaN: not measured
    values.forEach((v, i) => { if (v !== null) column[i] = v; });
    return [f.name, column];
  }));
  return {
    text, separator, header, duplicated, missing, ignored, commas, problems,
    starts: Uint32Array.from(starts), ends: Uint32Array.from(ends), columns: typed, rows: n,
    answers: new Array(n).fill(undefined), scores: new Float64Array(n).fill(NaN), notes: new Map(),
  };
}

const cellsOf = (u, row) => records(u.text.slice(u.starts[row], u.ends[row]), u.separator).next().value?.cells || [];
const blocking = (u) => u.duplicated.length > 0 || u.missing.some((f) => !f.optional);

function fillTable(table, headings, rows) {
  const head = el("tr", {}, ...headings.map((h) => el("th", { scope: "col", text: h })));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

function showPreview() {
  const u = upload;
  const bad = u.problems.size;
  page.summary.textContent = `${u.rows} row${u.rows === 1 ? "" : "s"} read; ${bad} with problems. Rows with problems are not sent: they are marked in the results.`;
  const items = [];
  for (const name of u.duplicated) {
    items.push(`The column “${name}” appears more than once: each measurement needs exactly one column, so this file cannot be checked. Remove or rename the extra column.`);
  }
  const needed = u.missing.filter((f) => !f.optional);
  const optional = u.missing.filter((f) => f.optional);
  if (needed.length) items.push(`Missing columns (add them to the file, named exactly as shown): ${needed.map((f) => `${featureLabel(f)} (“${f.name}”)`).join(", ")}.`);
  if (optional.length) items.push(`Not in the file, so checked as not measured in every row: ${optional.map(featureLabel).join(", ")}.`);
  if (u.ignored.length) items.push(`Columns the model does not use (ignored): ${u.ignored.join(", ")}.`);
  const listed = [...u.problems].slice(0, PROBLEMS_LISTED);
  for (const [row, text] of listed) items.push(`Row ${row + 1}: ${text}.`);
  if (bad > PROBLEMS_LISTED) items.push(`…and ${bad - PROBLEMS_LISTED} more rows with problems (all are in the download).`);
  page.problems.replaceChildren(...items.map((text) => el("li", { text })));
  const shown = u.header.slice(0, 6);
  const preview = [];
  for (let row = 0; row < Math.min(PREVIEW_ROWS, u.rows); row++) {
    const cells = cellsOf(u, row);
    const issue = u.problems.get(row) || "";
    preview.push(el("tr", { class: issue ? "bad-row" : "" }, el("td", { text: String(row + 1) }),
      ...shown.map((_, j) => el("td", { text: cells[j] ?? "" })), el("td", { text: issue })));
  }
  fillTable(page.previewTable, ["Row", ...shown.map(labelOf), "Problem"], preview);
  const none = bad === u.rows;
  page.score.disabled = blocking(u) || none;
  page.status.textContent = u.duplicated.length ? "Each column may appear only once: see the problems above."
    : needed.length ? "Add the missing columns to check these samples."
      : none ? "No row can be checked: see the problems above." : "";
  page.preview.hidden = false;
  page.results.hidden = true;
  page.progressSection.hidden = true;
}

async function onFile() {
  const file = page.file.files[0];
  problem.hide();
  page.results.hidden = true;
  page.preview.hidden = true;
  upload = null;
  if (!file) return;
  let text = await file.text();
  const separator = detectSeparator(text);
  const read = readRows(text, separator);
  text = null;
  if (!read || read.rows === 0) {
    page.fileStatus.textContent = "This file has no rows under its header.";
    return;
  }
  upload = read;
  page.fileStatus.textContent = separator === ";"
    ? `Read ${file.name}. It uses semicolons between values${upload.commas ? " and commas as decimal marks" : ""}; it was read that way.`
    : `Read ${file.name}.`;
  showPreview();
}

// One row as JSON: its values in the manifest's feature order, null for not measured.
function rowJson(u, row) {
  return "[" + manifest.features.map((f) => {
    const v = u.columns.get(f.name)[row];
    return v === null || v === undefined || Number.isNaN(v) ? "null" : typeof v === "number" ? String(v) : JSON.stringify(v);
  }).join(",") + "]";
}

// Requests of rows, as large as the API's row cap and body limit allow: [{rows, body}].
function* chunks(u, todo) {
  const maxBytes = Math.floor(limits.maxBodyBytes * BODY_SHARE);
  let rows = [], parts = [], bytes = 20;
  for (const row of todo) {
    const json = rowJson(u, row);
    if (rows.length && (rows.length >= limits.maxRows || bytes + json.length + 1 > maxBytes)) {
      yield { rows, body: `{"instances":[${parts.join(",")}]}` };
      rows = []; parts = []; bytes = 20;
    }
    rows.push(row);
    parts.push(json);
    bytes += json.length + 1;
  }
  if (rows.length) yield { rows, body: `{"instances":[${parts.join(",")}]}` };
}

function keep(u, rows, results) {
  results.forEach((result, i) => {
    const row = rows[i];
    const answer = result.label ?? result.value;
    u.answers[row] = answer;
    const p = result.probabilities ? result.probabilities[String(answer)] : undefined;
    if (typeof p === "number") u.scores[row] = p;
    if (result.warnings && result.warnings.length) u.notes.set(row, result.warnings.map((w) => w.field));
  });
}

// Sends one chunk; a 400 naming rows marks those rows and sends the rest again.
// Answers null when done, else the failed call.
async function scoreChunk(u, { rows, body }, signal) {
  let answer = await predict(body, { explain: false, signal });
  if (answer.status === 400 && answer.body && answer.body.error && answer.body.error.details.length) {
    const failed = new Set();
    for (const d of answer.body.error.details) {
      const row = rows[d.row ?? 0];
      if (row === undefined) continue;
      const text = `${labelOf(d.field)}: ${d.message}`;
      u.problems.set(row, u.problems.has(row) ? `${u.problems.get(row)}; ${text}` : text);
      failed.add(row);
    }
    rows = rows.filter((r) => !failed.has(r));
    if (!rows.length || !failed.size) return failed.size ? null : answer;
    answer = await predict(`{"instances":[${rows.map((r) => rowJson(u, r)).join(",")}]}`, { explain: false, signal });
  }
  if (!answer.ok) return answer;
  keep(u, rows, answer.body.results);
  return null;
}

async function score() {
  problem.hide();
  const u = upload;
  page.score.disabled = true;
  page.stop.hidden = false;
  page.progressSection.hidden = false;
  running = new AbortController();
  const todo = [];
  for (let row = 0; row < u.rows; row++) if (!u.problems.has(row) && u.answers[row] === undefined) todo.push(row); // a retry resumes here
  let done = 0, failure = null;
  page.progress.value = 0;
  page.status.textContent = `Checking rows… 0 of ${todo.length}`;
  try {
    await health;
    const queue = chunks(u, todo);
    const worker = async () => {
      for (let next = queue.next(); !next.done && !failure; next = queue.next()) {
        const failed = await scoreChunk(u, next.value, running.signal);
        if (failed) failure = failure || failed;
        done += next.value.rows.length;
        page.progress.value = Math.round((100 * done) / todo.length);
        page.status.textContent = `Checking rows… ${Math.min(done, todo.length)} of ${todo.length}`;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    running = null;
    page.stop.hidden = true;
    page.score.disabled = false;
  }
  const checked = u.answers.filter((a) => a !== undefined).length;
  if (failure && failure.cancelled) {
    page.status.textContent = `Stopped: ${checked} of ${u.rows} rows checked. Press “Check these samples” to go on from where it stopped.`;
  } else if (failure) {
    page.status.textContent = "Stopped: see the message.";
    problem.show(`${problemText(failure)} Checking stopped; the rows already checked are kept, and trying again goes on from where it stopped.`,
      score, { after: failure.retryAfter });
  } else {
    page.status.textContent = "Done: the results are below.";
    page.progress.value = 100;
  }
  showResults(!failure);
}

function noteOf(u, row, name = labelOf) {
  if (u.problems.has(row)) return "";
  const fields = u.notes.get(row);
  return fields ? `outside the training range: ${fields.map(name).join(", ")}` : "";
}

function showCounts(u) {
  const counts = new Map();
  for (const a of u.answers) if (a !== undefined && manifest.task === "classification") counts.set(String(a), (counts.get(String(a)) || 0) + 1);
  const order = (manifest.labels || []).map(String).filter((l) => counts.has(l));
  const items = order.map((l) => el("li", {}, el("span", { class: `answer-${answerKind(manifest, l)}`, text: className(l) }),
    document.createTextNode(`: ${counts.get(l)} row${counts.get(l) === 1 ? "" : "s"}`)));
  const bad = u.problems.size;
  if (bad) items.push(el("li", { text: `Rows with problems, not checked: ${bad}` }));
  const waiting = u.rows - bad - u.answers.filter((a) => a !== undefined).length;
  if (waiting > 0) items.push(el("li", { text: `Rows not checked yet: ${waiting}` }));
  page.counts.replaceChildren(...items);
}

function showResults(finished) {
  const u = upload;
  const done = u.answers.filter((a) => a !== undefined).length;
  page.resultsSummary.textContent = done === u.rows ? `${done} of ${u.rows} rows checked.`
    : `${done} of ${u.rows} rows checked; ${u.rows - done} ${u.rows - done === 1 ? "was" : "were"} not (see why in the table or the download).`;
  showCounts(u);
  const classification = manifest.task === "classification";
  const shown = Math.min(RESULT_ROWS, u.rows);
  const rows = [];
  for (let row = 0; row < shown; row++) {
    const answer = u.answers[row];
    const issue = u.problems.get(row) || (answer === undefined ? "not checked yet" : "");
    rows.push(el("tr", { class: u.problems.has(row) ? "bad-row" : "" }, el("td", { text: String(row + 1) }),
      el("td", { class: answer === undefined ? "" : `answer-${answerKind(manifest, answer)}`,
        text: answer === undefined ? "" : classification ? className(answer) : String(answer) }),
      el("td", { text: issue || noteOf(u, row) })));
  }
  fillTable(page.resultsTable, ["Row", classification ? "Answer" : "Predicted value", "Problem or note"], rows);
  page.resultsShown.textContent = shown < u.rows ? `The first ${shown} of ${u.rows} rows; the download has them all.` : "";
  page.columns.replaceChildren(...downloadColumns().flatMap(([name, what]) => [el("dt", { text: name }), el("dd", { text: what })]));
  page.results.hidden = false;
  if (finished) page.results.scrollIntoView({ block: "start" });
}

// The columns the download adds to the file's own, with what each one is.
function downloadColumns() {
  return [
    ["prediction", manifest.task === "classification" ? "The model's answer for the row." : "The value the model predicts for the row."],
    ...(manifest.task === "classification" ? [[scoreColumn(), leafShare()
      ? "Of the training samples that ended where this row did in the tree, the share that had this answer (0 to 1). It is not how often the model is right: the model card says that."
      : "The model's own score for its answer, from 0 to 1. It is not how often the model is right: the model card says that."]] : []),
    ["problem", "Why the row was not checked (empty when it was)."],
    ["notes", "Measurements outside the range the model learned from: the answer for that row is less reliable."],
  ];
}

function downloadResults() {
  const u = upload;
  const sep = u.separator;
  const decimal = (x) => (Number.isNaN(x) ? "" : sep === ";" && u.commas ? String(x).replace(".", ",") : String(x));
  const classification = manifest.task === "classification";
  const added = downloadColumns().map(([name]) => name);
  const parts = [csvLine([...u.header, ...added], sep)];
  let lines = [];
  for (let row = 0; row < u.rows; row++) {
    const answer = u.answers[row];
    const problemCell = u.problems.get(row) || (answer === undefined ? "not checked yet" : "");
    const prediction = answer === undefined ? "" : typeof answer === "number" ? decimal(answer) : String(answer);
    lines.push(csvLine([...cellsOf(u, row), prediction, ...(classification ? [decimal(u.scores[row])] : []),
      problemCell, noteOf(u, row, (n) => n)], sep));
    if (lines.length === BLOB_LINES) { parts.push(lines.join("")); lines = []; }
  }
  parts.push(lines.join(""));
  saveBlob(new Blob(parts, { type: "text/csv" }), "results.csv");
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function load() {
  problem.hide();
  page.loading.hidden = false;
  health = getHealth().then((answer) => { limits = limitsFrom(answer); });
  const model = await getModel();
  page.loading.hidden = true;
  if (!model.ok) {
    problem.show(`${problemText(model)} Files cannot be checked until the model's description loads.`, load, { after: model.retryAfter });
    return;
  }
  manifest = model.body;
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
  page.stop.addEventListener("click", () => running && running.abort());
  page.download.addEventListener("click", downloadResults);
  load();
}

start();
