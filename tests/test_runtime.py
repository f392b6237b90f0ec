"""The local Netlify-compatible runtime over real HTTP: static files, redirects, headers, functions."""
import http.client
import json

import pytest

import serve
from support import ROOT, LocalRuntime, example


def test_serves_the_site_with_the_configured_security_headers(runtime):
    status, headers, body = runtime.request("/")
    assert status == 200
    assert b"<html" in body
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_api_redirect_reaches_the_python_function(runtime):
    status, headers, body = runtime.json("/api/predict", method="POST",
                                         body={"features": example("malignant")})
    assert status == 200
    assert body["predictions"] == ["malignant"]
    assert headers["X-Model-Version"] == "1.0.0"


def test_curl_default_form_content_type_is_read_as_json(runtime):
    status, _, body = runtime.json("/api/predict", method="POST",
                                   body=json.dumps({"features": example("benign")}),
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert body["predictions"] == ["benign"]


def test_function_errors_arrive_as_json_over_http(runtime):
    status, _, body = runtime.json("/api/predict", method="POST", body={"features": {}})
    assert status == 400
    assert body["error"]["code"] == "missing_feature"


def test_encoded_paths_and_pretty_urls_serve_the_page(runtime):
    for path in ("/card%2Ehtml", "/card", "/card.html"):
        status, _, body = runtime.request(path)
        assert status == 200 and b"About the model" in body


def test_unknown_file_is_a_404(runtime):
    assert runtime.request("/no/such/page.html")[0] == 404


def test_path_traversal_does_not_leave_the_publish_dir(runtime):
    assert runtime.request("/../netlify.toml")[0] == 404
    assert runtime.request("/%2e%2e/netlify.toml")[0] == 404


def test_unknown_function_is_a_404(runtime):
    status, headers, body = runtime.json("/.netlify/functions/nothing")
    assert (status, body["error"]["message"]) == (404, "function not found")
    assert headers["X-Content-Type-Options"] == "nosniff"


RULES = """
[build]
publish = "site"
[[redirects]]
from = "/api/*"
to = "/.netlify/functions/predict/:splat"
status = 301
[[redirects]]
from = "/old/:name"
to = "/new/:name.html"
status = 301
[[redirects]]
from = "/home"
to = "/"
status = 302
"""


@pytest.fixture(scope="module")
def redirecting(tmp_path_factory):
    """A runtime whose netlify.toml has only redirect rules (as 3xx, so targets show)."""
    base = tmp_path_factory.mktemp("redirects")
    (base / "site").mkdir()
    (base / "netlify.toml").write_text(RULES)
    server = LocalRuntime(args=["--config", str(base / "netlify.toml")])
    yield server
    server.stop()


def location(server, path):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    return resp.status, resp.getheader("Location")


@pytest.mark.parametrize("path, answer", [
    ("/api/predict", (301, "/.netlify/functions/predict/predict")),
    ("/api/a/b", (301, "/.netlify/functions/predict/a/b")),
    ("/api", (301, "/.netlify/functions/predict/")),
    ("/old/card", (301, "/new/card.html")),
    ("/home", (302, "/")),
    ("/apix", (404, None)),
    ("/old/a/b", (404, None)),
])
def test_redirect_rules_match_with_splats_and_placeholders_over_http(redirecting, path, answer):
    assert location(redirecting, path) == answer


def test_301_rules_answer_a_location_over_http(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "netlify.toml").write_text(
        '[build]\npublish = "site"\n[[redirects]]\nfrom = "/old/:name"\nto = "/new/:name"\n'
        'status = 301\n')
    server = LocalRuntime(args=["--config", str(tmp_path / "netlify.toml")])
    try:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conn.request("GET", "/old/x")
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("Location")) == (301, "/new/x")
    finally:
        server.stop()


def test_the_committed_config_is_what_the_runtime_reads():
    site = serve.load_site(ROOT / "netlify.toml")
    assert site.publish == ROOT / "site"
    assert site.functions == ROOT / "netlify" / "functions"
    assert site.redirects[0]["to"] == "/.netlify/functions/predict/:splat"


def test_the_runtime_keeps_the_function_warm_across_requests(runtime):
    runtime.request("/api/predict", method="POST", body={"features": example()})
    _, headers, _ = runtime.request("/api/predict", method="POST", body={"features": example()})
    assert "load;dur=" not in headers["Server-Timing"]
    assert runtime.json("/api/health")[2]["warm"] is True
