"""The WSGI adapter, self-hosted as the README says (serve.py --function-only predict), answers
as the Lambda handler does: one core, two adapters."""
import http.client
import json

import pytest

from support import LocalRuntime, call, event, example


@pytest.fixture(scope="module")
def wsgi():
    """The README's self-hosting command: scripts/serve.py --function-only predict."""
    server = LocalRuntime(env={"MAX_BODY_BYTES": "20000"}, args=["--function-only", "predict"])
    yield server.port
    server.stop()


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp, data


def test_a_prediction_is_the_one_the_handler_gives(wsgi):
    body = {"features": example("malignant")}
    status, _, data = request(wsgi, "POST", "/api/predict?explain=false", json.dumps(body),
                              {"Content-Type": "application/json"})
    expected = call(event("POST", "/api/predict", body=body, query={"explain": "false"}))
    assert (status, json.loads(data)) == (expected[0], expected[2])


@pytest.mark.parametrize("method, path, body, status, code", [
    ("GET", "/api/nothing", None, 404, "not_found"),
    ("DELETE", "/api/predict", None, 405, "method_not_allowed"),
    ("POST", "/api/predict", "{", 400, "invalid_json"),
    ("POST", "/api/predict", json.dumps({"pad": "x" * 30000}), 413, "payload_too_large"),
])
def test_errors_have_the_one_shape(wsgi, method, path, body, status, code):
    got, resp, data = request(wsgi, method, path, body, {"Content-Type": "application/json"})
    assert (got, json.loads(data)["error"]["code"]) == (status, code)
    assert resp.getheader("Content-Type") == "application/json"


def test_settings_reach_the_wsgi_app(wsgi):
    _, _, data = request(wsgi, "GET", "/api/health")
    assert json.loads(data)["limits"]["max_body_bytes"] == 20000


def test_head_has_the_length_of_get_and_no_body(wsgi):
    _, _, get = request(wsgi, "GET", "/api/model")
    status, resp, head = request(wsgi, "HEAD", "/api/model")
    assert (status, head) == (200, b"")
    assert int(resp.getheader("Content-Length")) == len(get)
