"""The manifest is checked against the model when it loads, and readiness means a prediction
would succeed: /api/health and /ping answer 503 naming why, as /api/predict does."""
import hashlib
import json
import pickle
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import package_model
from support import call, event

ROUTES = ("/api/health", "/ping", "/api/predict")
OPERATION = {"/api/health": "#/paths/~1api~1health/get", "/ping": "#/paths/~1api~1ping/get",
             "/api/predict": "#/paths/~1api~1predict/post"}


def conforms(doc, route, status, answer):
    """Validate an answer against the served OpenAPI's schema of that route and status."""
    if route == "/ping" and status == 200:
        return  # text/plain
    pointer = f"{OPERATION[route]}/responses/{status}/content/application~1json/schema"
    Draft202012Validator({**doc, "$ref": pointer}).validate(answer)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """A pipeline that selects columns by name (so it takes a DataFrame), packaged; returns
    its folder."""
    folder = tmp_path_factory.mktemp("readiness")
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"width": rng.uniform(0, 10, 120).round(2),
                          "height": rng.uniform(0, 5, 120).round(2)})
    y = np.where(frame["width"] + 3 * frame["height"] > 12, "tall", "short")
    by_name = ColumnTransformer([("scale", StandardScaler(), ["width", "height"])])
    est = make_pipeline(by_name, LogisticRegression()).fit(frame, y)
    (folder / "model.pkl").write_bytes(pickle.dumps(est))
    frame.assign(kind=y).to_csv(folder / "ref.csv", index=False)
    package_model.package(folder / "model.pkl", folder / "ref.csv", folder / "served",
                          target="kind")
    return folder / "served"


def _rewrite(folder, *, estimator=None, data: bytes | None = None, **changes):
    """Replace the served pickle (keeping the manifest's SHA-256 true) and manifest entries."""
    manifest = json.loads((folder / "manifest.json").read_text())
    if estimator is not None:
        data = pickle.dumps(estimator)
    if data is not None:
        (folder / "model.pkl").write_bytes(data)
        manifest["artifact"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _swapped(manifest):
    features = manifest["features"]
    return {"features": [features[1], features[0], *features[2:]]}


def _renamed_label(manifest):
    return {"labels": ["short", "grande"], "classes": ["short", "grande"]}


def _one_feature_less(manifest):
    return {"features": manifest["features"][:1]}


BROKEN = [
    ("missing pickle", lambda d, m: (d / "model.pkl").unlink(), "the model file 'model.pkl' is missing"),
    ("corrupt pickle", lambda d, m: _rewrite(d, data=b"\x80\x05not a pickle"),
     "the model file cannot be unpickled"),
    ("another scikit-learn", lambda d, m: _rewrite(d, versions={**m["versions"],
                                                               "scikit-learn": "1.0.2"}),
     "written by scikit-learn 1.0.2"),
    ("a dict", lambda d, m: _rewrite(d, estimator={"coef": [1.0, 2.0]}),
     "the model file holds a dict, not a scikit-learn estimator with predict()"),
    ("unfitted", lambda d, m: _rewrite(d, estimator=LogisticRegression()),
     "the model file holds a LogisticRegression that is not fitted"),
    ("task", lambda d, m: _rewrite(d, task="regression"),
     "the manifest says regression; the model file holds a Pipeline, which is not a regressor"),
    ("feature count", lambda d, m: _rewrite(d, **_one_feature_less(m)),
     "the manifest has 1 features; the model takes 2"),
    ("features swapped", lambda d, m: _rewrite(d, **_swapped(m)),
     "the manifest's features differ from the model's: number 1 is 'height' in the manifest, "
     "'width' in the model"),
    ("labels", lambda d, m: _rewrite(d, **_renamed_label(m)),
     "the manifest's labels differ from the model's: number 2 is 'grande' in the manifest, "
     "'tall' in the model"),
]


@pytest.mark.parametrize("route", ROUTES)
def test_a_servable_model_is_ready(packaged, monkeypatch, route):
    monkeypatch.setenv("MODEL_DIR", str(packaged))
    body = {"features": {"width": 1.0, "height": 2.0}} if route == "/api/predict" else None
    status, _, answer = call(event("POST" if body else "GET", route, body=body))
    assert status == 200
    conforms(call(event("GET", "/api/openapi.json"))[2], route, status, answer)
    if route == "/api/health":
        assert answer["ready"] is True and answer["model"]["loaded"] is True


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name, breaks, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_model_that_cannot_predict_is_not_ready_and_says_why(packaged, tmp_path, monkeypatch,
                                                               route, name, breaks, message):
    folder = shutil.copytree(packaged, tmp_path / "served")
    breaks(folder, json.loads((folder / "manifest.json").read_text()))
    monkeypatch.setenv("MODEL_DIR", str(folder))
    features = json.loads((folder / "manifest.json").read_text())["features"]
    row = {f["name"]: f["default"] for f in features}  # valid for the manifest as it now is
    body = {"features": row} if route == "/api/predict" else None
    status, _, answer = call(event("POST" if body else "GET", route, body=body))
    assert status == 503
    assert answer["error"]["code"] == "model_unavailable"
    assert message in answer["error"]["message"]
    conforms(call(event("GET", "/api/openapi.json"))[2], route, status, answer)


def test_a_dataframe_model_is_not_ready_without_pandas(packaged, monkeypatch):
    manifest = json.loads((packaged / "manifest.json").read_text())
    assert manifest["input"]["container"] == "dataframe"
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` fails, as when absent
    monkeypatch.setenv("MODEL_DIR", str(packaged))
    for route in ("/api/health", "/ping"):
        status, _, answer = call(event("GET", route))
        assert status == 503
        assert "pandas is not installed here" in answer["error"]["message"]
