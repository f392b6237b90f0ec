// The developers' page: predicting first, in every body format the API takes (features,
// instances, dataframe_split, CSV), then the other routes, each with copyable examples built
// from the live manifest and OpenAPI document; and a "try it" box.
import { API, getModel, getOpenApi } from "./fetch.js";
import { $, el } from "./dom.js";
import { rounded } from "./format.js";
import { createProblemBox, problemText } from "./problem.js";
import { toCsv } from "./csv.js";

let problem = null;

// JSON with objects one key a line and lists of plain values on one (wrapping) line.
function pretty(value, indent = "") {
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
    return `[\n${value.map((v) => inner + pretty(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (value && typeof value === "object") {
    return `{\n${Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`).join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

// A code block with a heading and a copy button. Its <code> says its language
// (class="language-sh|python|js|csv") and, for a file the others use, its name (data-file):
// tests run each block as written.
function codeBlock(title, code, { level = "h4", lang, file } = {}) {
  const pre = el("pre", { tabindex: "0" }, el("code", { class: lang && `language-${lang}`, "data-file": file, text: code }));
  const said = el("span", { class: "hint", role: "status", "aria-live": "polite" });
  const copy = el("button", { type: "button", class: "copy", text: "Copy", "aria-label": `Copy: ${title}`,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(code);
        said.textContent = "Copied.";
      } catch (err) {
        window.getSelection().selectAllChildren(pre);
        said.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
      }
    } });
  return [el("div", { class: "copy-row" }, el(level, { text: title }), el("span", {}, said, copy)), pre];
}

function jsonExamples(url, body, { full }) {
  const json = pretty(body);
  const blocks = [["curl", curlPost(url, json), "sh"]];
  if (full) {
    blocks.push(["Python", `import json, urllib.request\n\nbody = ${json}\nreq = urllib.request.Request(\n    "${url}",\n    data=json.dumps(body).encode(),\n    headers={"Content-Type": "application/json"},\n)\nwith urllib.request.urlopen(req) as r:\n    print(r.status, json.load(r)["predictions"])`, "python"]);
    // No top-level await: saved as a plain .js file, Node (18+) runs it as it is.
    blocks.push(["JavaScript (browser or Node 18+)", `async function main() {\n  const r = await fetch("${url}", {\n    method: "POST",\n    headers: { "Content-Type": "application/json" },\n    body: JSON.stringify(${json.replace(/\n/g, "\n    ")}),\n  });\n  const answer = await r.json();\n  console.log(r.status, answer.predictions);\n}\n\nmain();`, "js"]);
  }
  return blocks;
}

const curlPost = (url, json) => `curl -s -X POST ${url} \\\n  -H 'Content-Type: application/json' \\\n  -d '${json}'`;

// Rows of the manifest's examples, in feature order, rounded as the form shows them.
function exampleRows(manifest) {
  const names = manifest.features.map((f) => f.name);
  return (manifest.examples || []).map((e) => Object.fromEntries(names.map((n) => [n, typeof e.features[n] === "number" ? rounded(e.features[n], 6) : e.features[n]])));
}

function predictSection(manifest, operation) {
  const url = `${location.origin}${API}/predict`;
  const names = manifest.features.map((f) => f.name);
  const examples = exampleRows(manifest);
  const one = examples[0] || {};
  const two = examples.slice(0, 2);
  const csv = toCsv([names, ...two.map((r) => names.map((n) => r[n]))]);
  const formats = [
    ["One row: features", "An object of feature names and values.", { features: one }, true],
    ["Many rows: instances", "A list of rows, each a list of values in feature order (or an object, as with features).", { instances: two.map((r) => names.map((n) => r[n])) }, false],
    ["Many rows: dataframe_split", "Columns and rows, as pandas' DataFrame.to_dict(orient=\"split\") writes them.", { dataframe_split: { columns: names, data: two.map((r) => names.map((n) => r[n])) } }, false],
  ];
  const parts = [el("h2", { id: "route-predict", text: "POST /api/predict" }),
    el("p", { text: `${operation.summary || "Predict"}. Every format answers the same JSON: one result per row, with the label (or value), the model's scores, an explanation and warnings. Add ?explain=false to skip explanations.` })];
  for (const [title, about, body, full] of formats) {
    parts.push(el("h3", { text: title }), el("p", { text: about }),
      ...jsonExamples(url, body, { full }).flatMap(([name, code, lang], i) => (i === 0 ? codeBlock(`${title}: ${name}`, code, { lang })
        : [el("details", {}, el("summary", { text: `The same in ${name}` }), ...codeBlock(`${title}: ${name}`, code, { lang }))])));
  }
  parts.push(el("h3", { text: "Many rows: CSV" }), el("p", { text: "A CSV file with a header row of feature names; add Accept: text/csv to get CSV back." }),
    ...codeBlock("CSV: samples.csv", csv, { lang: "csv", file: "samples.csv" }),
    ...codeBlock("CSV: curl", `curl -s -X POST ${url} \\\n  -H 'Content-Type: text/csv' \\\n  --data-binary @samples.csv`, { lang: "sh" }));
  return el("section", { "aria-labelledby": "route-predict" }, ...parts);
}

// Another route: a GET as it is, a POST (MLflow's /invocations) with a body it takes.
function routeSection(manifest, path, method, operation) {
  const id = `route-${operation.operationId}`;
  const url = `${location.origin}${path}`;
  const names = manifest.features.map((f) => f.name);
  const rows = exampleRows(manifest).slice(0, 1).map((r) => names.map((n) => r[n]));
  const code = method === "POST" ? curlPost(url, pretty({ dataframe_split: { columns: names, data: rows } })) : `curl -s ${url}`;
  return el("section", { "aria-labelledby": id },
    el("h2", { id, text: `${method} ${path}` }),
    el("p", { text: operation.summary || "" }),
    ...codeBlock(`${method} ${path}: curl`, code, { level: "h3", lang: "sh" }));
}

async function send(event) {
  event.preventDefault();
  const button = $("try-send");
  button.disabled = true;
  $("try-status").textContent = "Sending…";
  $("try-response").textContent = "";
  try {
    let response;
    try {
      response = await fetch(`${API}/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: $("try-body").value });
    } catch (err) {
      $("try-status").textContent = problemText({ status: 0 });
      return;
    }
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (err) { /* not JSON: show as is */ }
    $("try-status").textContent = `HTTP ${response.status}`;
    $("try-response").textContent = shown;
  } finally {
    button.disabled = false;
  }
}

async function load() {
  problem.hide();
  $("status").textContent = "Loading the live schema…";
  const [model, spec] = await Promise.all([getModel(), getOpenApi()]);
  if (!model.ok || !spec.ok) {
    $("status").textContent = "";
    const failed = model.ok ? spec : model;
    problem.show(problemText(failed), load, { after: failed.retryAfter });
    return;
  }
  const sections = [];
  for (const [path, methods] of Object.entries(spec.body.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (path.endsWith("/predict") && method === "post") sections.unshift(predictSection(model.body, operation));
      else sections.push(routeSection(model.body, path, method.toUpperCase(), operation));
    }
  }
  $("routes").replaceChildren(...sections);
  const example = (model.body.examples || [])[0];
  if (!$("try-body").value) $("try-body").value = JSON.stringify({ features: example ? example.features : {} }, null, 2);
  $("try").hidden = false;
  $("status").textContent = `Model ${model.body.name} ${model.body.version}, ${model.body.features.length} features (GET /api/model lists them in order).`;
}

function start() {
  problem = createProblemBox($("problem"));
  $("try-form").addEventListener("submit", send);
  load();
}

start();
