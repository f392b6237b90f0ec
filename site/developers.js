// The developers' page: each route with curl, Python and JavaScript examples built from the
// live manifest and OpenAPI document, and a "try it" box.
import { API, getModel, getOpenApi, problemText, showProblem, hideProblem, el } from "./api.js";

const $ = (id) => document.getElementById(id);

function examples(path, method, body) {
  const url = `${location.origin}${path}`;
  const json = body ? JSON.stringify(body) : null;
  const curl = method === "GET" ? `curl -s ${url}` : `curl -s -X POST ${url} \\\n  -H 'Content-Type: application/json' \\\n  -d '${json}'`;
  const python = method === "GET"
    ? `import json, urllib.request\n\nwith urllib.request.urlopen("${url}") as r:\n    print(json.load(r))`
    : `import json, urllib.request\n\nbody = ${json}\nreq = urllib.request.Request("${url}", data=json.dumps(body).encode(),\n                             headers={"Content-Type": "application/json"})\nwith urllib.request.urlopen(req) as r:\n    print(json.load(r)["predictions"])`;
  const js = method === "GET"
    ? `const r = await fetch("${url}");\nconsole.log(await r.json());`
    : `const r = await fetch("${url}", {\n  method: "POST",\n  headers: { "Content-Type": "application/json" },\n  body: JSON.stringify(${json}),\n});\nconsole.log(r.status, await r.json());`;
  return [["curl", curl], ["Python", python], ["JavaScript", js]];
}

function routeSection(path, method, operation, body) {
  const id = `route-${operation.operationId}`;
  return el("section", { "aria-labelledby": id },
    el("h2", { id, text: `${method} ${path}` }),
    el("p", { text: operation.summary || "" }),
    ...examples(path, method, body).flatMap(([name, code]) => [el("h3", { text: name }), el("pre", { tabindex: "0" }, el("code", { text: code }))]));
}

async function send(event) {
  event.preventDefault();
  const button = $("try-send");
  button.disabled = true;
  $("try-status").textContent = "Sending…";
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

async function start() {
  hideProblem();
  const [model, spec] = await Promise.all([getModel(), getOpenApi()]);
  if (!model.ok || !spec.ok) {
    $("status").textContent = "";
    showProblem(problemText(model.ok ? spec : model), start);
    return;
  }
  const example = (model.body.examples || [])[0];
  const body = { features: example ? example.features : {} };
  const sections = [];
  for (const [path, methods] of Object.entries(spec.body.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      sections.push(routeSection(path, method.toUpperCase(), operation, method === "post" ? body : null));
    }
  }
  $("routes").replaceChildren(...sections);
  if (!$("try-body").value) $("try-body").value = JSON.stringify(body, null, 2);
  $("status").textContent = `Model ${model.body.name} ${model.body.version}: ${model.body.features.length} features, in this order: ${model.body.features.map((f) => f.name).join(", ")}.`;
}

$("try-form").addEventListener("submit", send);
start();
