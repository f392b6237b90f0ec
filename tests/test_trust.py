"""Nothing runs that is not a model, and a manifest serving cannot trust is a 503.

Each hostile artifact is a real pickle beside a manifest carrying its real SHA-256, so only
the restricted unpickler stands between it and the code it names.
"""
import hashlib
import json
import logging
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import package_model
from predict.unpickle import ForbiddenGlobal, restricted_loads
from support import ROOT, call, event, example, manifest


class Marker:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


class ThroughNumpyTesting:
    """Unpickling this asks numpy.testing's runstring to exec Python that creates a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return np.testing.runstring, (f"open({str(self.path)!r}, 'w').close()", {})


class ThroughNumpyLoad:
    """Unpickling this asks numpy.load to read a second pickle (allow_pickle) that runs code."""

    def __init__(self, inner):
        self.inner = inner

    def __reduce__(self):
        return np.load, (str(self.inner), None, True)


def serve_pickle(model_dir, data: bytes, **changes):
    """Write data as the served pickle with a manifest that carries its true SHA-256."""
    m = manifest()
    m["artifact"] = {**m["artifact"], "file": "dect_model.pkl", "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()}
    m.update(changes)
    (model_dir / "dect_model.pkl").write_bytes(data)
    (model_dir / "manifest.json").write_text(json.dumps(m))


@pytest.fixture
def served(tmp_path, monkeypatch):
    d = tmp_path / "model"
    d.mkdir()
    monkeypatch.setenv("MODEL_DIR", str(d))
    return d


def hostile(tmp_path, kind):
    marker = tmp_path / "marker"
    if kind == "os.system":
        return pickle.dumps(Marker(marker)), marker, "posix.system"
    if kind == "numpy.testing":
        return (pickle.dumps(ThroughNumpyTesting(marker)), marker,
                "numpy.testing._private.utils.runstring")
    inner = tmp_path / "inner.pkl"
    inner.write_bytes(pickle.dumps(Marker(marker)))
    return pickle.dumps(ThroughNumpyLoad(inner)), marker, "numpy.load"


@pytest.mark.parametrize("kind", ["os.system", "numpy.testing", "numpy.load"])
def test_a_pickle_naming_code_is_refused_with_a_503_that_names_it(served, tmp_path, caplog,
                                                                    kind):
    data, marker, name = hostile(tmp_path, kind)
    serve_pickle(served, data)
    caplog.set_level(logging.INFO, logger="predict")
    status, _, body = call(event("POST", "/api/predict", body={"features": example()}))
    assert (status, body["error"]["code"]) == (503, "model_unavailable")
    assert name in body["error"]["message"]
    assert name in caplog.text
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["os.system", "numpy.testing", "numpy.load"])
def test_packaging_refuses_a_pickle_naming_code_and_names_the_global(tmp_path, capsys, kind):
    data, marker, name = hostile(tmp_path, kind)
    (tmp_path / "m.pkl").write_bytes(data)
    (tmp_path / "ref.csv").write_text("a,y\n1,x\n")
    code = package_model.main([str(tmp_path / "m.pkl"), str(tmp_path / "ref.csv"),
                               "--out", str(tmp_path / "out")])
    assert code == 2
    assert f"names {name}, which is not on the list" in capsys.readouterr().err
    assert not marker.exists()


def test_the_committed_model_loads_through_the_restricted_unpickler():
    data = (ROOT / "model" / "dect_model.pkl").read_bytes()
    assert type(restricted_loads(data)).__name__ == manifest()["estimator"]


def _frame(n=60):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                         "c": rng.choice(["x", "y", "z"], n), "d": rng.integers(0, 5, n)})


@pytest.mark.parametrize("final", [
    RandomForestClassifier(n_estimators=3, random_state=0),
    GradientBoostingClassifier(n_estimators=3, random_state=0),
    HistGradientBoostingClassifier(max_iter=3),
    HistGradientBoostingRegressor(max_iter=3),
    LogisticRegression(),
], ids=lambda e: type(e).__name__)
def test_dataframe_fitted_pipelines_load_through_the_restricted_unpickler(final):
    X = _frame()
    y = X["a"] * 2 if type(final).__name__.endswith("Regressor") else np.where(X["a"] > 0,
                                                                               "up", "down")
    columns = ColumnTransformer([("num", StandardScaler(), ["a", "b", "d"]),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])])
    est = make_pipeline(columns, FunctionTransformer(np.tanh), final).fit(X, y)
    for protocol in (2, 5):
        loaded = restricted_loads(pickle.dumps(est, protocol=protocol))
        assert (loaded.predict(X) == est.predict(X)).all()


def test_a_users_own_global_is_refused_until_the_setting_trusts_it(served, tmp_path,
                                                                    monkeypatch):
    (tmp_path / "userfeatures.py").write_text("def double(X):\n    return X * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import userfeatures
    X = _frame()[["a", "b"]].to_numpy()
    est = make_pipeline(FunctionTransformer(userfeatures.double),
                        LogisticRegression()).fit(X, X[:, 0] > 0)
    with pytest.raises(ForbiddenGlobal, match="userfeatures.double"):
        restricted_loads(pickle.dumps(est))
    m = manifest()
    features = [f for f in m["features"] if f["name"] in ("mean radius", "mean texture")]
    serve_pickle(served, pickle.dumps(est), features=features, labels=["False", "True"])
    row = {"features": {f["name"]: 1.0 for f in features}}
    assert call(event("POST", "/api/predict", body=row))[0] == 503
    monkeypatch.setenv("TRUSTED_GLOBALS", "userfeatures.double")
    assert call(event("POST", "/api/predict", body=row))[0] == 200


def _copy(d):
    for name in ("manifest.json", "dect_model.pkl"):
        (d / name).write_bytes((ROOT / "model" / name).read_bytes())


def _manifest_is(text):
    def write(d):
        _copy(d)
        (d / "manifest.json").write_text(text)
    return write


def _manifest_with(**changes):
    def write(d):
        _copy(d)
        m = manifest()
        for key, value in changes.items():
            if value is ...:
                del m[key]
            else:
                m[key] = value
        (d / "manifest.json").write_text(json.dumps(m))
    return write


def _outside_artifact(d):
    # A good model one directory up: the manifest must not reach it.
    _copy(d.parent)
    m = manifest()
    m["artifact"]["file"] = "../dect_model.pkl"
    (d / "manifest.json").write_text(json.dumps(m))


ROUTES_NEEDING_THE_MANIFEST = [event("GET", "/api/health"), event("GET", "/api/model"),
                               event("GET", "/api/openapi.json"),
                               event("POST", "/api/predict", body={"features": example()})]


@pytest.mark.parametrize("write, message", [
    (_manifest_is("null"), "manifest.json is not a JSON object"),
    (_manifest_is("[]"), "manifest.json is not a JSON object"),
    (_manifest_is("{}"), "manifest.json has no features"),
    (_manifest_with(features=...), "manifest.json has no features"),
    (_manifest_with(features=[{"type": "number"}]), "features[0] has no name"),
    (_manifest_with(artifact=None), "manifest.json has no artifact with a file and a sha256"),
    (_manifest_with(artifact=...), "manifest.json has no artifact with a file and a sha256"),
], ids=["null", "array", "empty", "no features", "nameless feature", "null artifact",
        "no artifact"])
def test_a_manifest_that_cannot_be_trusted_is_a_503_on_every_route(served, write, message):
    write(served)
    for ev in ROUTES_NEEDING_THE_MANIFEST:
        status, _, body = call(ev)
        assert (status, body["error"]["code"]) == (503, "model_unavailable")
        assert body["error"]["message"] == "the model is not available: " + message


def test_an_artifact_outside_the_model_directory_is_never_read(served):
    _outside_artifact(served)
    status, _, body = call(event("POST", "/api/predict", body={"features": example()}))
    assert (status, body["error"]["code"]) == (503, "model_unavailable")
    assert "outside the model directory" in body["error"]["message"]
