// Used by `netlify dev` only ([dev].functions in netlify.toml); never deployed.
// netlify dev reserves /.netlify/functions/* for JS/Go functions, so this one named
// `predict` forwards each request, unchanged, to the local Python runtime that
// [dev].command started, which runs the real Python function.
//
// It is a Lambda-style (v1) handler on purpose: netlify dev starts a new worker thread for
// every call of a v2 function (`export default async (req) => ...`), ~150 ms each, but calls
// a v1 handler in its own process, where this module and fetch's kept-alive connections to
// the runtime stay warm between calls.
const TARGET = process.env.PREDICT_DEV_TARGET || "http://127.0.0.1:8889";
// Hop-by-hop and framing headers: fetch sets its own.
const DROP = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding",
                      "upgrade", "expect"]);

export const handler = async (event) => {
  const url = new URL(event.rawUrl);
  const headers = Object.fromEntries(
    Object.entries(event.headers || {}).filter(([name]) => !DROP.has(name.toLowerCase())));
  const hasBody = !["GET", "HEAD"].includes(event.httpMethod) && event.body;
  const res = await fetch(TARGET + url.pathname + url.search, {
    method: event.httpMethod,
    headers,
    body: hasBody ? Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8") : undefined,
  });
  const body = Buffer.from(await res.arrayBuffer());
  const out = {};
  res.headers.forEach((value, name) => {
    if (!DROP.has(name)) out[name] = value;
  });
  return { statusCode: res.status, headers: out, body: body.toString("base64"),
           isBase64Encoded: true };
};
