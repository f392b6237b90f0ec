"""Models fitted the usual way (on a DataFrame, saved with pickle or joblib) are packaged and
served unchanged: through the handler and the local runtime, every reference row's
prediction equals the estimator's own on the DataFrame; MLflow's client contract holds."""
import json
import subprocess
import sys

import numpy as np
import pytest

import fitted
import package_model
from support import ROOT, LocalRuntime, call, event

PANDAS_PIN = next(line.strip() for line in (ROOT / "requirements-pandas.txt").read_text()
                  .splitlines() if line.startswith("pandas=="))


def package_kind(kind, tmp_path, monkeypatch, kinds=fitted.KINDS):
    """Fit, save and package one kind of model; serve it through MODEL_DIR."""
    fit = kinds[kind](tmp_path)
    out = tmp_path / "served"
    manifest = package_model.package(fit.model_file, fit.data_file, out, target=fit.target,
                                     name=kind)
    monkeypatch.setenv("MODEL_DIR", str(out))
    return fit, manifest, out


@pytest.fixture(params=list(fitted.KINDS))
def packaged(request, tmp_path, monkeypatch):
    return (request.param, *package_kind(request.param, tmp_path, monkeypatch))


def assert_parity(predictions, fit, manifest):
    """Every reference row's served prediction equals the estimator's own on the DataFrame."""
    expected = fit.estimator.predict(fit.frame)
    if manifest["task"] == "classification":
        assert predictions == list(expected)
    else:
        np.testing.assert_allclose(predictions, expected, rtol=1e-12)


def test_the_handler_answers_what_the_estimator_says_on_the_dataframe(packaged):
    kind, fit, manifest, _ = packaged
    status, _, body = call(event("POST", "/api/predict", body={"instances": fitted.rows(fit.frame)}))
    assert status == 200, body
    assert_parity(body["predictions"], fit, manifest)
    if manifest["task"] == "classification":
        proba = [[r["probabilities"][str(c)] for c in fit.estimator.classes_]
                 for r in body["results"]]
        np.testing.assert_allclose(proba, fit.estimator.predict_proba(fit.frame), rtol=1e-12)


def test_the_local_runtime_serves_it_over_http(packaged):
    kind, fit, manifest, out = packaged
    server = LocalRuntime(env={"MODEL_DIR": str(out)})
    try:
        status, _, body = server.json("/api/predict", method="POST",
                                      body={"instances": fitted.rows(fit.frame)})
        assert status == 200, body
        assert_parity(body["predictions"], fit, manifest)
    finally:
        server.stop()


@pytest.mark.parametrize("kind, container, requires, source_format", [
    ("frame-classifier", "dataframe", [PANDAS_PIN], "pickle"),
    ("frame-regressor", "dataframe", [PANDAS_PIN], "joblib"),
    ("forest-joblib-compressed", "array", [], "joblib (zlib)"),
    ("boosting", "array", [], "pickle"),
])
def test_the_manifest_says_what_the_model_takes_and_needs(tmp_path, monkeypatch, kind, container,
                                                          requires, source_format):
    fit, manifest, out = package_kind(kind, tmp_path, monkeypatch)
    assert manifest["input"]["container"] == container
    assert manifest["requires"] == requires
    assert manifest["source"]["format"] == source_format
    assert manifest["source"]["file"] == fit.model_file.name
    assert manifest["artifact"]["format"] == "pickle"  # one verified file, whatever came in
    if container == "dataframe":
        assert manifest["input"]["dtypes"] == {"rooms": "int64", "area": "float64",
                                               "city": "object"}
        assert manifest["input"]["columns"] == list(fit.frame.columns)


@pytest.mark.parametrize("kind, status", [("boosting", 200), ("frame-classifier", 503)])
def test_without_pandas_only_a_model_that_takes_a_dataframe_is_unavailable(tmp_path, monkeypatch,
                                                                          kind, status):
    # As in a Lambda bundle built without pandas: `import pandas` fails in that process.
    fit, manifest, out = package_kind(kind, tmp_path, monkeypatch)
    script = ("import json, sys; sys.modules['pandas'] = None\n"
              f"sys.path.insert(0, {str(ROOT / 'netlify' / 'functions')!r})\n"
              "from predict import handler\n"
              f"body = json.dumps({{'instances': {json.dumps(fitted.rows(fit.frame))}}})\n"
              "r = handler({'httpMethod': 'POST', 'path': '/api/predict', 'body': body,"
              " 'headers': {'content-type': 'application/json'}})\n"
              "print(json.dumps([r['statusCode'], json.loads(r['body'])]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"MODEL_DIR": str(out), "PATH": ""}, timeout=120)
    code, body = json.loads(done.stdout or "null") or (None, done.stderr[-2000:])
    assert code == status, body
    if status == 200:
        assert_parity(body["predictions"], fit, manifest)
    else:
        assert body["error"]["code"] == "model_unavailable"
        assert "pandas is not installed here; install requirements-pandas.txt" in \
            body["error"]["message"]


def mlflow_body(frame) -> str:
    """Return the body MLflow's ScoringServerClient.invoke posts for a DataFrame."""
    return json.dumps({"dataframe_split": frame.to_dict(orient="split")})


MLFLOW_HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path, version", [("/invocations", "v2"), ("/api/invocations", "netlify")])
def test_mlflow_invocations_on_the_function_url(packaged, path, version):
    kind, fit, manifest, _ = packaged
    status, headers, body = call(event("POST", path, body=mlflow_body(fit.frame),
                                       headers=MLFLOW_HEADERS, version=version))
    assert status == 200
    assert list(body) == ["predictions"]
    assert_parity(body["predictions"], fit, manifest)


def test_mlflow_ping_on_the_function_url():
    status, _, body = call(event("GET", "/ping", version="v2"))
    assert (status, body) == (200, "\n")


def test_mlflow_client_contract_at_the_site_root(tmp_path, monkeypatch):
    fit, manifest, out = package_kind("frame-classifier", tmp_path, monkeypatch)
    server = LocalRuntime(env={"MODEL_DIR": str(out)})
    try:
        assert server.request("/ping")[0] == 200
        status, headers, data = server.request("/invocations", method="POST",
                                               body=mlflow_body(fit.frame), headers=MLFLOW_HEADERS)
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert_parity(json.loads(data)["predictions"], fit, manifest)
        status, _, body = server.json("/invocations", method="POST", headers=MLFLOW_HEADERS,
                                      body={"dataframe_split": {"columns": ["rooms"],
                                                                "data": [[2]]}})
        assert status == 400 and body["error_code"] == "BAD_REQUEST"
        assert body["details"][0]["code"] == "missing_feature"
    finally:
        server.stop()


def test_invocations_refuses_get_naming_post():
    status, headers, body = call(event("GET", "/invocations", version="v2"))
    assert status == 405 and headers["Allow"] == "POST, OPTIONS"


def test_a_model_set_to_output_pandas_needs_pandas_even_when_fitted_on_an_array(tmp_path,
                                                                              monkeypatch):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    table = fitted.houses()
    X = table[["rooms", "area"]].to_numpy(dtype=float)
    est = make_pipeline(StandardScaler(), LinearRegression()).set_output(transform="pandas")
    est.fit(X, table["price"])
    fit = fitted._save(tmp_path, est, table, "price", how="pickle", features=["rooms", "area"])
    kinds = {"array-pandas-output": lambda folder: fit}
    fit, manifest, _ = package_kind("array-pandas-output", tmp_path, monkeypatch, kinds=kinds)
    assert (manifest["input"]["container"], manifest["requires"]) == ("array", [PANDAS_PIN])
    status, _, body = call(event("POST", "/api/predict", body={"instances": fitted.rows(fit.frame)}))
    assert status == 200
    np.testing.assert_allclose(body["predictions"], est.predict(X), rtol=1e-12)


def mlflow_client_body(data, params=None) -> str:
    """Return the body MLflow's ScoringServerClient.invoke posts for data and params: the
    request shapes of mlflow.utils.proto_json_utils.dump_input_data (MLflow 2.x), copied
    from its source (mlflow itself is too heavy to install for the tests)."""
    import pandas as pd
    if isinstance(data, pd.DataFrame):
        post_data = {"dataframe_split": data.to_dict(orient="split")}
    elif isinstance(data, dict):
        post_data = {"inputs": {k: v.tolist() for k, v in data.items()}}
    elif isinstance(data, np.ndarray):
        post_data = {"inputs": data.tolist()}
    else:
        post_data = {"inputs": data}
    if params is not None:
        post_data["params"] = params
    return json.dumps(post_data)


@pytest.mark.parametrize("shape, params", [("dataframe", {"temperature": 0.1}), ("array", None),
                                           ("columns", {"temperature": 0.1}), ("list", None)])
def test_mlflow_client_request_shapes_get_the_estimators_answers(packaged, shape, params):
    kind, fit, manifest, _ = packaged
    frame = fit.frame
    data = {"dataframe": frame, "array": frame.to_numpy(),
            "columns": {c: frame[c].to_numpy() for c in frame.columns},
            "list": fitted.rows(frame)}[shape]
    if shape == "array" and (frame.dtypes == object).any():
        data = frame.to_numpy().tolist()  # tolist of a mixed array: its Python values
    status, _, body = call(event("POST", "/invocations", body=mlflow_client_body(data, params),
                                 headers=MLFLOW_HEADERS, version="v2"))
    assert status == 200, body
    assert_parity(body["predictions"], fit, manifest)


INVOCATION_ERRORS = [
    # (case, method, body, status, MLflow's error_code, this API's detail code)
    ("not JSON", "POST", "{", 400, "BAD_REQUEST", None),
    ("a feature left out", "POST", {"dataframe_split": {"columns": ["mean radius"],
                                                        "data": [[2.0]]}},
     400, "BAD_REQUEST", "missing_feature"),
    ("a feature sent twice", "POST", '{"inputs": {"mean radius": [2], "mean radius": [3]}}',
     400, "BAD_REQUEST", "duplicate_feature"),
    ("GET", "GET", None, 405, "BAD_REQUEST", None),
]


@pytest.mark.parametrize("case, method, body, status, error_code, detail",
                         INVOCATION_ERRORS, ids=[c[0] for c in INVOCATION_ERRORS])
def test_invocations_errors_have_mlflows_shape(case, method, body, status, error_code, detail):
    got, _, answer = call(event(method, "/invocations", body=body, headers=MLFLOW_HEADERS,
                                version="v2"))
    assert (got, answer["error_code"]) == (status, error_code)
    assert isinstance(answer["message"], str) and answer["message"]
    assert [d["code"] for d in answer["details"]][:1] == ([detail] if detail else [])
