// Talking to the prediction function, shared by every page.
// Each call answers {ok, status, body}; a network failure answers status 0.

export const API = "/api";

async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(API + path, options);
  } catch (err) {
    return { ok: false, status: 0, body: null };
  }
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  return { ok: response.ok, status: response.status, body, headers: response.headers };
}

export const getModel = () => call("/model");
export const getHealth = () => call("/health");
export const getOpenApi = () => call("/openapi.json");

export function predict(payload, { explain = true } = {}) {
  return call("/predict" + (explain ? "" : "?explain=false"), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
}

// A sentence for a person about a failed call, from its status and error body.
export function problemText(result) {
  if (result.status === 0) return "The network seems to be down, or the site cannot be reached.";
  if (result.status === 503) return "The model is not available right now.";
  const message = result.body && result.body.error && result.body.error.message;
  return message ? `The request was refused: ${message}` : `Something went wrong (HTTP ${result.status}).`;
}

// The page's problem box (#problem, #problem-text, #retry): a failure in words and a way to retry.
let retryAction = null;
const box = (id) => document.getElementById(id);

export function showProblem(text, retry) {
  box("problem-text").textContent = text;
  box("problem").hidden = false;
  retryAction = retry;
}

export function hideProblem() {
  box("problem").hidden = true;
}

box("retry")?.addEventListener("click", () => retryAction && retryAction());

// Number formatting shared by the pages.
export function formatNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 1000 || Number.isInteger(value) ? value.toLocaleString("en") : String(Number(value.toPrecision(3)));
}

export const percent = (p) => `${Math.round(p * 100)}%`;

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}
