// Used by `netlify dev` only ([dev].functions in netlify.toml); never deployed.
// netlify dev reserves /.netlify/functions/* for JS/Go functions, so this one named
// `predict` forwards each request, unchanged, to the local Python runtime that
// [dev].command started, which runs the real Python function.
const TARGET = process.env.PREDICT_DEV_TARGET || "http://127.0.0.1:8889";

export default async (req) => {
  const url = new URL(req.url);
  const headers = new Headers(req.headers);
  headers.delete("host");
  const hasBody = !["GET", "HEAD"].includes(req.method);
  const res = await fetch(TARGET + url.pathname + url.search, {
    method: req.method,
    headers,
    body: hasBody ? await req.arrayBuffer() : undefined,
  });
  return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
};
