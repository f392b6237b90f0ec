// Talking to the prediction function. Each call answers {ok, status, body, headers};
// a network failure answers status 0. Nothing happens on import.

export const API = "/api";
// The API's limits as they were when the site was written; /api/health reports the live ones.
const DEFAULT_LIMITS = { maxRows: 1000, maxBodyBytes: 1024 * 1024 };

export async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(API + path, options);
  } catch (err) {
    return { ok: false, status: 0, body: null, headers: null };
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
