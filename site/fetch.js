// Talking to the prediction function. Each call answers {ok, status, body, headers,
// retryAfter}; a network failure answers status 0, a call with no answer after TIMEOUT_MS
// status 0 with timedOut, a call cancelled through its signal status 0 with cancelled.
// Nothing happens on import.

export const API = "/api";
export const TIMEOUT_MS = 30_000;
// The API's limits as they were when the site was written; /api/health reports the live ones.
const DEFAULT_LIMITS = { maxRows: 1000, maxBodyBytes: 1024 * 1024 };

// Seconds to wait from a Retry-After header (seconds or an HTTP date), or null.
export function retryAfterSeconds(headers) {
  const value = headers && headers.get("Retry-After");
  if (!value) return null;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.min(3600, Math.max(0, Math.ceil(seconds))) : null;
}

export async function call(path, { signal, timeout = TIMEOUT_MS, ...options } = {}) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeout);
  const cancel = () => controller.abort();
  if (signal) signal.addEventListener("abort", cancel);
  try {
    const response = await fetch(API + path, { ...options, signal: controller.signal });
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await response.json().catch(() => null) : await response.text();
    return { ok: response.ok, status: response.status, body, headers: response.headers,
      retryAfter: retryAfterSeconds(response.headers) };
  } catch (err) {
    return { ok: false, status: 0, body: null, headers: null, retryAfter: null,
      timedOut, cancelled: !timedOut && controller.signal.aborted };
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener("abort", cancel);
  }
}

export const getModel = () => call("/model");
export const getHealth = () => call("/health");
export const getOpenApi = () => call("/openapi.json");

// One prediction request; `body` is a payload object or a JSON text already built.
export function predict(body, { explain = true, signal } = {}) {
  return call("/predict" + (explain ? "" : "?explain=false"), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

// The request limits from a health answer ({limits: {max_rows, max_body_bytes}}, the same
// keys at the top, or in capitals), else the defaults above.
export function limitsFrom(health) {
  const body = (health && health.ok && health.body) || {};
  const given = body.limits || body;
  const pick = (...keys) => keys.map((k) => given[k]).find((v) => Number.isInteger(v) && v > 0);
  return {
    maxRows: pick("max_rows", "MAX_ROWS") ?? DEFAULT_LIMITS.maxRows,
    maxBodyBytes: pick("max_body_bytes", "MAX_BODY_BYTES") ?? DEFAULT_LIMITS.maxBodyBytes,
  };
}
