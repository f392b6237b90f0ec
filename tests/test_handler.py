"""The handler called as a plain function, with Netlify-shaped events."""
import gc
import json
import logging
import subprocess
import sys
import threading

import pytest

from predict.app import App
from predict.settings import Settings
from support import ROOT, app, call, event, example, manifest


def test_health_loads_the_model_and_says_it_is_ready():
    status, headers, body = call(event("GET", "/api/health"))
    assert status == 200
    assert body["status"] == "ok" and body["ready"] is True and body["warm"] is False
    assert body["model"] == {"name": "dect_model", "version": "1.0.0", "loaded": True}
    assert body["limits"] == {"max_rows": 1000, "max_body_bytes": 1048576,
                              "max_response_bytes": 6_000_000}
    assert app().store.is_loaded() is True
    assert "load;dur=" in headers["Server-Timing"]


def test_model_route_lists_features_and_labels():
    status, _, body = call(event("GET", "/api/model"))
    assert status == 200
    assert body["labels"] == ["benign", "malignant"]
    assert len(body["features"]) == 30
    assert body["name"] == "dect_model" and body["version"] == "1.0.0"


@pytest.mark.parametrize("label", ["benign", "malignant"])
def test_predict_answers_label_and_probabilities(label):
    status, headers, body = call(event("POST", "/api/predict", body={"features": example(label)}))
    assert status == 200
    result = body["results"][0]
    assert result["label"] == label == body["predictions"][0]
    assert set(result["probabilities"]) == {"benign", "malignant"}
    assert result["probabilities"][label] == max(result["probabilities"].values())
    assert sum(result["probabilities"].values()) == pytest.approx(1)
    assert headers["Cache-Control"] == "no-store"


def test_the_same_route_answers_under_the_functions_path():
    ev = event("POST", "/.netlify/functions/predict/predict", body={"features": example()})
    assert call(ev)[0] == 200


def test_model_is_loaded_once_and_kept_warm():
    ev = event("POST", "/api/predict", body={"features": example()})
    _, first, _ = call(ev)
    loaded, _ = app().store.get()
    _, second, _ = call(ev)
    assert "load;dur=" in first["Server-Timing"]
    assert "load;dur=" not in second["Server-Timing"]
    assert app().store.get() == (loaded, {})
    assert call(event("GET", "/api/health"))[2]["warm"] is True


def test_concurrent_first_requests_load_the_model_once_and_log_the_waiters_warm(caplog):
    caplog.set_level(logging.INFO, logger="predict")
    core = App(Settings())
    barrier = threading.Barrier(8)
    statuses = []

    def request():
        barrier.wait()
        statuses.append(call(event("POST", "/api/predict", body={"features": example()}),
                             core)[0])

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert statuses == [200] * 8
    assert sum(1 for line in lines if line["event"] == "model_loaded") == 1
    invocations = [line for line in lines if line["event"] == "invocation"]
    cold = [line for line in invocations if line["cold"]]
    assert len(cold) == 1 and cold[0]["load_ms"] > 0
    assert cold[0]["wait_ms"] is None
    assert all(line["load_ms"] is None for line in invocations if not line["cold"])


def test_importing_the_function_does_not_import_scikit_learn():
    code = ("import sys; sys.path.insert(0, 'netlify/functions'); import predict; "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_bad_json_is_a_400_that_does_not_echo_the_body():
    secret = '{"features": {"mean radius": "s3cr3t-value",'
    status, _, body = call(event("POST", "/api/predict", body=secret,
                                 headers={"content-type": "application/json"}))
    assert status == 400
    assert body["error"]["code"] == "invalid_json"
    assert "s3cr3t" not in json.dumps(body)


def test_missing_feature_is_a_400_naming_it():
    features = example()
    del features["worst radius"]
    status, _, body = call(event("POST", "/api/predict", body={"features": features}))
    assert status == 400
    assert body["error"]["code"] == "missing_feature"
    assert body["error"]["details"][0]["field"] == "worst radius"
    assert "worst radius" in body["error"]["message"]


def test_non_numeric_feature_is_a_400_naming_it_without_echoing_it():
    features = {**example(), "mean texture": "s3cr3t"}
    status, _, body = call(event("POST", "/api/predict", body={"features": features}))
    assert status == 400
    assert body["error"]["code"] == "invalid_type"
    assert body["error"]["details"][0]["field"] == "mean texture"
    assert "s3cr3t" not in json.dumps(body)


@pytest.fixture
def model_copy(tmp_path, monkeypatch):
    """A copy of the committed model directory, served through MODEL_DIR."""
    for name in ("manifest.json", "dect_model.pkl"):
        (tmp_path / name).write_bytes((ROOT / "model" / name).read_bytes())
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    return tmp_path


def _break_version(d):
    m = json.loads((d / "manifest.json").read_text())
    m["versions"]["scikit-learn"] = "0.0.1"
    (d / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("breakage, reason", [
    (lambda d: (d / "dect_model.pkl").write_bytes(b"not the model"), "SHA-256"),
    (lambda d: (d / "dect_model.pkl").unlink(), "missing"),
    (_break_version, "scikit-learn 0.0.1"),
])
def test_a_broken_model_is_a_503_with_a_reason(model_copy, breakage, reason):
    breakage(model_copy)
    status, _, body = call(event("POST", "/api/predict", body={"features": example()}))
    assert status == 503
    assert body["error"]["code"] == "model_unavailable"
    assert reason in body["error"]["message"]


@pytest.mark.parametrize("breakage", [None, _break_version], ids=["loads", "fails"])
def test_the_garbage_collector_is_back_on_after_a_model_load(model_copy, breakage):
    """Loading pauses the collector while scikit-learn is imported; it must come back on,
    whether the model loads or not."""
    if breakage:
        breakage(model_copy)
    assert gc.isenabled()
    status, _, _ = call(event("POST", "/api/predict", body={"features": example()}))
    assert status == (503 if breakage else 200)
    assert gc.isenabled()


def test_a_model_load_leaves_the_collector_off_where_the_host_turned_it_off(model_copy):
    gc.disable()
    try:
        assert call(event("POST", "/api/predict", body={"features": example()}))[0] == 200
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_unreadable_manifest_is_a_503_on_every_route(model_copy):
    (model_copy / "manifest.json").write_text("{not json")
    for ev in (event("GET", "/api/health"), event("GET", "/api/model"),
               event("POST", "/api/predict", body={"features": example()})):
        status, _, body = call(ev)
        assert status == 503
        assert body["error"]["code"] == "model_unavailable"


def test_manifest_sha_matches_the_committed_pickle():
    import hashlib
    m = manifest()
    data = (ROOT / "model" / m["artifact"]["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == m["artifact"]["sha256"]
    assert len(data) == m["artifact"]["bytes"]


def test_a_bad_request_does_not_load_the_model():
    status, _, _ = call(event("POST", "/api/predict", body={"features": {}}))
    assert status == 400
    assert app().store.is_loaded() is False
