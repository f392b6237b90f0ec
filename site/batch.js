// The "check many samples" page: CSV upload, preview with problems, chunked scoring, download.
import { getModel, predict, problemText, showProblem, hideProblem, percent, el } from "./api.js";
import { parseCsv, toCsv } from "./csv.js";

const CHUNK_ROWS = 200; // under the API's 1,000-row cap
const CHUNK_BYTES = 900000; // under the API's 1 MiB body limit (Lambda's is 6 MB), for wide models
const PREVIEW_ROWS = 10;
const $ = (id) => document.getElementById(id);
const page = {
  status: $("status"),
  file: $("file"), sample: $("sample-link"), preview: $("preview"), summary: $("preview-summary"),
  problems: $("preview-problems"), previewTable: $("preview-table"), score: $("score"),
  progressSection: $("progress-section"), progress: $("progress"), results: $("results"),
  resultsSummary: $("results-summary"), download: $("download"), resultsTable: $("results-table"),
};
let manifest = null;
let upload = null; // {header, rows: [{line, cells, values, problem, result}]}

const labelOf = (f) => f.label || f.name;

function checkValue(feature, text) {
  const value = (text ?? "").trim();
  if (value === "") return [null, `${labelOf(feature)} is empty`];
  if (feature.type === "categorical") {
    const match = feature.categories.find((c) => String(c) === value);
    return match === undefined ? [null, `${labelOf(feature)} is not one of the known values`] : [match, null];
  }
  const number = Number(value);
  if (!Number.isFinite(number)) return [null, `${labelOf(feature)} is not a number`];
  if (feature.type === "integer" && !Number.isInteger(number)) return [null, `${labelOf(feature)} must be a whole number`];
  return [number, null];
}

function readRows(table) {
  const header = table[0].map((h) => h.trim());
  const missing = manifest.features.filter((f) => !header.includes(f.name));
  const known = new Set(manifest.features.map((f) => f.name));
  const ignored = header.filter((h) => !known.has(h));
  const rows = table.slice(1).map((cells, i) => {
    const values = {};
    const problems = [];
    for (const feature of manifest.features) {
      const [value, problem] = checkValue(feature, cells[header.indexOf(feature.name)]);
      if (problem) problems.push(problem); else values[feature.name] = value;
    }
    if (cells.length !== header.length) problems.unshift(`has ${cells.length} cells, the header has ${header.length}`);
    return { line: i + 1, cells, values, problem: problems.join("; ") || null, result: null };
  });
  return { header, rows, missing, ignored };
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
  if (missing.length) page.problems.append(el("li", { text: `Missing columns (add them to the file): ${missing.map((f) => f.name).join(", ")}.` }));
  if (ignored.length) page.problems.append(el("li", { text: `Columns the model does not use (ignored): ${ignored.join(", ")}.` }));
  for (const r of rows.filter((r) => r.problem).slice(0, 20)) page.problems.append(el("li", { text: `Row ${r.line}: ${r.problem}.` }));
  const shown = header.slice(0, 6);
  fillTable(page.previewTable, ["Row", ...shown, "Problem"], rows.slice(0, PREVIEW_ROWS).map((r) =>
    el("tr", { class: r.problem ? "bad-row" : "" }, el("td", { text: String(r.line) }),
      ...shown.map((_, j) => el("td", { text: r.cells[j] ?? "" })), el("td", { text: r.problem || "" }))));
  page.score.disabled = missing.length > 0 || bad === rows.length;
  page.preview.hidden = false;
  page.results.hidden = true;
  page.progressSection.hidden = true;
}

async function onFile() {
  const file = page.file.files[0];
  hideProblem();
  if (!file) return;
  const table = parseCsv(await file.text());
  if (table.length < 2) {
    page.status.textContent = "This file has no rows under its header.";
    page.preview.hidden = true;
    return;
  }
  upload = readRows(table);
  page.status.textContent = `Read ${file.name}.`;
  showPreview();
}

function markFailures(chunk, details) {
  const failed = new Set();
  for (const d of details) {
    const r = chunk[d.row ?? 0];
    if (!r) continue;
    r.problem = (r.problem ? r.problem + "; " : "") + `${d.field}: ${d.message}`;
    failed.add(r);
  }
  return chunk.filter((r) => !failed.has(r));
}

// Rows in request-sized groups: at most CHUNK_ROWS rows and CHUNK_BYTES of JSON each.
function* chunks(rows) {
  let chunk = [], bytes = 0;
  for (const row of rows) {
    const size = JSON.stringify(row.values).length + 1;
    if (chunk.length && (chunk.length >= CHUNK_ROWS || bytes + size > CHUNK_BYTES)) {
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
  if (answer.status === 400 && answer.body && answer.body.error.details.length) {
    chunk = markFailures(chunk, answer.body.error.details);
    if (!chunk.length) return true;
    answer = await predict({ instances: chunk.map((r) => r.values) }, { explain: false });
  }
  if (!answer.ok) {
    showProblem(`${problemText(answer)} Scoring stopped; the rows already checked are kept.`, score);
    return false;
  }
  answer.body.results.forEach((result, i) => (chunk[i].result = result));
  return true;
}

async function score() {
  hideProblem();
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
  page.status.textContent = finished ? "Done." : "Stopped: see the message above.";
  if (finished) page.progress.value = 100;
  showResults();
}

function outcome(r) {
  if (!r.result) return { prediction: "", probability: "", problem: r.problem || "not checked yet", notes: "" };
  const label = r.result.label ?? r.result.value;
  const p = r.result.probabilities ? r.result.probabilities[label] : null;
  const outside = r.result.warnings.map((w) => w.field);
  const notes = outside.length ? `outside the training range: ${outside.join(", ")}` : "";
  return { prediction: String(label), probability: p === null ? "" : p, problem: "", notes };
}

function showResults() {
  const rows = upload.rows;
  const done = rows.filter((r) => r.result).length;
  page.resultsSummary.textContent = `${done} of ${rows.length} rows checked; ${rows.length - done} could not be (see why in the table).`;
  fillTable(page.resultsTable, ["Row", "Prediction", "Probability", "Problem or note"], rows.map((r) => {
    const o = outcome(r);
    return el("tr", { class: o.problem ? "bad-row" : "" }, el("td", { text: String(r.line) }),
      el("td", { text: o.prediction }), el("td", { text: o.probability === "" ? "" : percent(o.probability) }),
      el("td", { text: o.problem || o.notes }));
  }));
  page.results.hidden = false;
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

async function start() {
  hideProblem();
  const model = await getModel();
  if (!model.ok) {
    showProblem(problemText(model), start);
    return;
  }
  manifest = model.body;
  const names = manifest.features.map((f) => f.name);
  const sample = toCsv([names, ...(manifest.examples || []).map((e) => names.map((n) => e.features[n]))]);
  page.sample.href = URL.createObjectURL(new Blob([sample], { type: "text/csv" }));
  page.file.disabled = false;
  if (page.file.files.length) onFile();
}

page.file.disabled = true;
page.file.addEventListener("change", onFile);
page.score.addEventListener("click", score);
page.download.addEventListener("click", downloadResults);
start();
