"""Nothing runs that is not a model, and a manifest serving cannot trust is a 503.

Each hostile artifact is a real pickle beside a manifest carrying its real SHA-256, so only
the restricted unpickler and its audit stand between it and what it would do. The crafted
corpus (tests/crafted.py) is refused served (by the function in a child process of its own,
and by the real local runtime) and packaged (package_model.py, whose own child runs the file
first): no file written, no signal, no hang, bounded memory. Every kind of model people fit
still loads and predicts as before.
"""
import hashlib
import json
import logging
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import crafted
import package_model
from predict.model import ModelStore
from predict.settings import from_env
from predict.unpickle import ForbiddenGlobal, restricted_loads
from support import ROOT, LocalRuntime, call, event, example, manifest

MEMORY_CEILING = 700 << 20  # bytes: what neither the function nor packaging may pass


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


# -- every kind of model people fit still loads, through pickle and joblib -------------------

def _matrix():
    """Yield (id, estimator, X, y) for the kinds of model the function must keep serving."""
    from sklearn import (decomposition, ensemble, impute, linear_model, naive_bayes,
                         neighbors, neural_network, svm, tree)
    from sklearn.feature_extraction.text import TfidfVectorizer
    rng = np.random.default_rng(0)
    n = 60
    X = rng.normal(size=(n, 4))
    X_nan = X.copy()
    X_nan[::7, 1] = np.nan
    df = _frame(n).assign(c=lambda d: d["c"].astype("category"))
    df.loc[::9, "b"] = np.nan
    labels = {"int": (X[:, 0] > 0).astype(int), "str": np.where(X[:, 0] > 0, "up", "down"),
              "bool": X[:, 0] > 0, "float": (X[:, 0] > 0) + 1.0}
    for y_kind, est in [
            ("str", tree.DecisionTreeClassifier(max_depth=4)),
            ("int", ensemble.RandomForestClassifier(5, random_state=0)),
            ("bool", ensemble.ExtraTreesClassifier(5, random_state=0)),
            ("float", ensemble.GradientBoostingClassifier(n_estimators=5)),
            ("str", linear_model.LogisticRegression()), ("int", svm.LinearSVC()),
            ("str", svm.SVC()),
            ("str", neighbors.KNeighborsClassifier(algorithm="kd_tree")),
            ("int", neighbors.KNeighborsClassifier(algorithm="ball_tree")),
            ("float", naive_bayes.GaussianNB()),
            ("str", neural_network.MLPClassifier(max_iter=30, random_state=0))]:
        yield f"{type(est).__name__}-{y_kind}", est, X, labels[y_kind]
    three = np.digitize(X[:, 0], [-0.5, 0.5])
    yield "GradientBoosting-3-classes", ensemble.GradientBoostingClassifier(n_estimators=3), X, three
    for est in (linear_model.Ridge(), linear_model.Lasso(), linear_model.LinearRegression(),
                svm.SVR(), ensemble.RandomForestRegressor(5, random_state=0),
                neighbors.KNeighborsRegressor(algorithm="kd_tree", p=3)):
        yield type(est).__name__, est, X, X[:, 0]
    yield ("HistGradientBoosting-nan", ensemble.HistGradientBoostingClassifier(max_iter=5),
           X_nan, labels["int"])
    yield ("HistGradientBoosting-categorical-frame",
           ensemble.HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype"),
           df, labels["str"])
    columns = ColumnTransformer([
        ("num", make_pipeline(impute.SimpleImputer(), StandardScaler()), ["a", "b", "d"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])])
    yield ("ColumnTransformer-PCA-frame",
           make_pipeline(columns, decomposition.PCA(2), LogisticRegression()), df, labels["bool"])
    from sklearn.compose import make_column_selector, make_column_transformer
    by_dtype = make_column_transformer(
        (StandardScaler(), make_column_selector(dtype_include=np.number)),
        (OneHotEncoder(), make_column_selector(dtype_include=object)))
    yield ("column-selector-frame", make_pipeline(by_dtype, LogisticRegression()),
           _frame(n), labels["str"])
    text = pd.Series(rng.choice(["good day", "bad day", "fine"], n))
    yield "Tfidf-text", make_pipeline(TfidfVectorizer(), LogisticRegression()), text, labels["int"]
    yield ("Stacking", ensemble.StackingClassifier(
        [("lr", LogisticRegression()), ("tree", tree.DecisionTreeClassifier())]), X, labels["str"])
    yield ("Voting-soft", ensemble.VotingClassifier(
        [("lr", LogisticRegression()), ("nb", naive_bayes.GaussianNB())], voting="soft"),
        X, labels["str"])
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.multiclass import OneVsOneClassifier
    yield "Calibrated-LinearSVC", CalibratedClassifierCV(svm.LinearSVC()), X, labels["str"]
    yield "SGD-hinge", linear_model.SGDClassifier(random_state=0), X, labels["int"]
    yield "OneVsOne-SVC", OneVsOneClassifier(svm.SVC()), X, three
    yield ("FunctionTransformer-log1p",
           make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()), np.abs(X),
           labels["int"])


MATRIX = {name: (est, X, y) for name, est, X, y in _matrix()}


@pytest.fixture(scope="module")
def matrix():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: (est.fit(X, y), X) for name, (est, X, y) in MATRIX.items()}


@pytest.mark.parametrize("name", list(MATRIX))
def test_every_kind_of_model_loads_and_predicts_as_before(matrix, name):
    est, X = matrix[name]
    expected = est.predict(X)
    for protocol in (2, 5):
        loaded = restricted_loads(pickle.dumps(est, protocol=protocol))
        np.testing.assert_array_equal(loaded.predict(X), expected)


@pytest.mark.parametrize("name", ["RandomForestClassifier-int", "HistGradientBoosting-nan",
                                  "ColumnTransformer-PCA-frame", "KNeighborsClassifier-str"])
@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_files_load_through_the_same_checks(matrix, tmp_path, name, compress):
    import joblib
    est, X = matrix[name]
    joblib.dump(est, tmp_path / "m.joblib", compress=compress)
    data = (tmp_path / "m.joblib").read_bytes()
    loaded = package_model._restricted_joblib_load(data, frozenset())
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_the_allow_list_is_the_one_the_installed_scikit_learn_makes():
    sys.path.insert(0, str(ROOT / "scripts"))
    import allowed_globals
    assert (ROOT / "netlify" / "functions" / "predict" / "allowed.py").read_text() \
        == allowed_globals.render(), "run: python scripts/allowed_globals.py"


# -- the crafted corpus ------------------------------------------------------------------------

REASONS = {  # the words each refusal must say (the reason, and where when the audit knew)
    "stacking-writes-a-file": "Pipeline.steps[0][1].func: is not a vetted NumPy ufunc",
    "stacking-method-name": "StackingClassifier.stack_method_: names a method that is not",
    "voting-non-estimator": "VotingClassifier.estimators_[0]: is not an estimator",
    "function-transformer-builtin": "Pipeline.steps[0][1].func: is not a vetted NumPy ufunc",
    "pipeline-non-estimator-step": "Pipeline.steps[0][1]: is not an estimator",
    "threshold-response-method": "FixedThresholdClassifier.response_method: names a method",
    "object-field-without-flags": "the field 'a' of a structured dtype is malformed",
    "field-past-item": "the field 'a' of a structured dtype lies past its item",
    "buffer-shorter-than-shape": "needs 8589934592 bytes; the pickle carries 8",
    "tree-cycle": "a node's child is the root (the walk would never end)",
    "tree-feature-1e9": "a node tests a feature outside 0..29",
    "tree-child-out-of-range": "a node's child is outside the tree's 27 nodes",
    "hist-predictor-cycle": "HistGradientBoostingClassifier._predictors[0][0]: a node's child "
                            "is the root",
    "list-of-range": "a range of 10000000000 items is more than the pickle's",
    "bytearray-of-size": "the pickle asks for bytes it does not carry",
    "ndarray-called": "the pickle calls ndarray directly",
    "array-state-bomb": "needs 1099511627776 bytes; the pickle carries 0",
    "shared-nest-as-key": "a dictionary key or set item is not a plain value",
    "import-before-check": "names trust_probe_import.Anything, which is not on the list",
    "testing-module": "names sklearn.utils._testing.assert_allclose, which is not on the list",
    "svm-sizes": "SVC: a support vector machine's sizes disagree",
    "neighbours-index": "KDTree (a neighbours index): its nodes, points or metric disagree",
    "sparse-indices": "LogisticRegression.coef_: a malformed sparse matrix",
    "state-sets-class": "the state of IdentityLink is not a dict of attributes",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every crafted pickle served from a model directory of its own (manifest with its true
    SHA-256 and size), the import probe on a path, and a scratch working directory."""
    base = tmp_path_factory.mktemp("corpus")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = crafted.corpus()
    assert set(items) == set(REASONS)
    marker = base / "imported"
    probe = crafted.import_probe(base, marker)
    for name, item in items.items():
        d = base / name
        d.mkdir()
        serve_pickle(d, item.data)
    (base / "reference.csv").write_text(
        ",".join(f["name"] for f in manifest()["features"]) + "\n"
        + ",".join(str(example()[f["name"]]) for f in manifest()["features"]) + "\n")
    return base, items, marker, probe


SERVE_EACH = """
import json, resource, sys
from predict.app import build_app
for d in sys.argv[2:]:
    app = build_app({"MODEL_DIR": d})
    resp = app.handle_event(json.loads(sys.argv[1]), None)
    body = json.loads(resp["body"])
    print(json.dumps({"dir": d, "status": resp["statusCode"], "error": body.get("error")}),
          flush=True)
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "testing_imported": "sklearn.utils._testing" in sys.modules}), flush=True)
"""


def _scratch(tmp_path):
    d = tmp_path / "cwd"
    d.mkdir()
    return d


def test_the_corpus_is_refused_when_served(corpus, tmp_path):
    base, items, marker, probe = corpus
    cwd = _scratch(tmp_path)
    ev = event("POST", "/api/predict", body={"features": example()})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "netlify" / "functions"), str(probe)])}
    done = subprocess.run([sys.executable, "-c", SERVE_EACH, json.dumps(ev),
                           *(str(base / n) for n in items)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]  # no signal, no crash
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    answers = {Path(a["dir"]).name: a for a in lines[:-1]}
    for name, reason in REASONS.items():
        a = answers[name]
        assert (a["status"], a["error"]["code"]) == (503, "model_unavailable"), name
        assert reason in a["error"]["message"], (name, a["error"]["message"])
    assert lines[-1]["maxrss_kb"] * 1024 < MEMORY_CEILING
    assert not lines[-1]["testing_imported"]
    assert not marker.exists() and list(cwd.iterdir()) == []


PACKAGE_EACH = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import package_model
for model in sys.argv[4:]:
    code = package_model.main([model, sys.argv[2], "--out", sys.argv[3] + "/" + model.split("/")[-2]])
    print(json.dumps({"model": model, "code": code}), flush=True)
print(json.dumps({"maxrss_kb": max(resource.getrusage(who).ru_maxrss for who in
                                   (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))}))
"""


def test_the_corpus_is_refused_when_packaged(corpus, tmp_path):
    """Each file through package_model.main, in one process (one import of scikit-learn),
    each first loaded in packaging's own isolated child."""
    base, items, marker, probe = corpus
    cwd = _scratch(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(probe)}
    done = subprocess.run([sys.executable, "-c", PACKAGE_EACH, str(ROOT / "scripts"),
                           str(base / "reference.csv"), str(out),
                           *(str(base / n / "dect_model.pkl") for n in items)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    codes = [json.loads(line) for line in done.stdout.splitlines()]
    assert [c["code"] for c in codes[:-1]] == [2] * len(items)
    for name, reason in REASONS.items():
        assert f"{name}/dect_model.pkl" in done.stderr, name
        message = done.stderr.split(f"{name}/dect_model.pkl", 1)[1].split("package_model:")[0]
        assert reason in message, (name, message[:300])
    assert codes[-1]["maxrss_kb"] * 1024 < MEMORY_CEILING
    assert not marker.exists() and list(cwd.iterdir()) == [] and list(out.iterdir()) == []


def test_the_file_writing_gadget_writes_a_file_when_nothing_checks_it(corpus, tmp_path):
    """The oracle for the corpus: unpickled by plain pickle, the stacking gadget really writes
    a file on its first prediction (so its refusal above is a refusal of something real)."""
    base, items, _, _ = corpus
    cwd = _scratch(tmp_path)
    (tmp_path / "m.pkl").write_bytes(items["stacking-writes-a-file"].data)
    script = ("import pickle, sys, numpy as np\n"
              "m = pickle.load(open(sys.argv[1], 'rb'))\n"
              "try:\n    m.predict(np.zeros((1, 30)))\nexcept Exception:\n    pass\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.pkl")], cwd=cwd,
                   capture_output=True, timeout=120, check=True)
    assert [p.read_bytes().rstrip(b"\0") for p in cwd.iterdir()] == [b"written by a pickle"]


def test_packaging_refuses_through_its_command_line_too(corpus, tmp_path):
    base, _, _, _ = corpus
    cwd = _scratch(tmp_path)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "package_model.py"),
                           str(base / "tree-cycle" / "dect_model.pkl"),
                           str(base / "reference.csv"), "--out", str(tmp_path / "out")],
                          cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert REASONS["tree-cycle"] in done.stderr
    assert not (tmp_path / "out").exists() and list(cwd.iterdir()) == []


def test_a_child_that_exceeds_its_limits_is_a_clear_packaging_error(tmp_path, monkeypatch):
    """Whatever happens in the isolated child (here: its memory limit is too small for Python
    to start), packaging fails with a message, and writes nothing."""
    monkeypatch.setattr(package_model, "TRIAL_MEMORY", 32 << 20)
    model, ref = tmp_path / "m.pkl", tmp_path / "ref.csv"
    model.write_bytes((ROOT / "model" / "dect_model.pkl").read_bytes())
    ref.write_text("a\n1\n")
    with pytest.raises(package_model.PackagingError, match="in an isolated process") as err:
        package_model.package(model, ref, tmp_path / "out")
    assert "32 MB of memory, no file writes" in str(err.value)
    assert not (tmp_path / "out").exists()


# -- bounded loading when served ---------------------------------------------------------------

def test_a_model_file_that_is_a_fifo_is_a_503_and_health_still_answers(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    data = (ROOT / "model" / "dect_model.pkl").read_bytes()
    serve_pickle(d, data)
    (d / "dect_model.pkl").unlink()
    os.mkfifo(d / "dect_model.pkl")  # nobody ever writes to it: a read would block forever
    server = LocalRuntime(env={"MODEL_DIR": str(d), "MODEL_LOAD_TIMEOUT": "5"})
    try:
        status, _, body = server.json("/api/predict", method="POST",
                                      body={"features": example()})
        assert (status, body["error"]["code"]) == (503, "model_unavailable")
        assert "'dect_model.pkl' is not a regular file" in body["error"]["message"]
        status, _, _ = server.request("/api/health")
        assert status in (200, 503)
        assert server.request("/")[0] == 200
    finally:
        server.stop()


def test_a_hostile_model_through_a_real_server_is_a_503_and_the_server_lives_on(corpus):
    base, _, _, _ = corpus
    server = LocalRuntime(env={"MODEL_DIR": str(base / "tree-cycle")})
    try:
        for _ in range(2):  # refused again, not half-loaded the second time
            status, _, body = server.json("/api/predict", method="POST",
                                          body={"features": example()})
            assert (status, body["error"]["code"]) == (503, "model_unavailable")
            assert REASONS["tree-cycle"] in body["error"]["message"]
        assert server.proc.poll() is None
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """A forest big enough that loading it takes a noticeable while."""
    d = tmp_path_factory.mktemp("forest")
    X = np.random.default_rng(0).normal(size=(400, 30))
    forest = RandomForestClassifier(n_estimators=150, random_state=0).fit(
        X, np.where(X[:, 0] > 0, "malignant", "benign"))
    serve_pickle(d, pickle.dumps(forest), estimator="RandomForestClassifier")
    return d


def test_a_load_that_outlasts_the_wait_is_a_503_and_finishes_in_the_background(slow_model):
    store = ModelStore(from_env({"MODEL_DIR": str(slow_model)}))
    with pytest.raises(Exception) as err:
        store.get(timeout=0)
    assert str(err.value) == "the model is not available: the model did not load within 0 s; " \
                             "it is still loading"
    deadline = time.monotonic() + 120
    while not store.is_loaded() and time.monotonic() < deadline:
        time.sleep(0.05)
    model, spent = store.get()
    assert type(model.estimator).__name__ == "RandomForestClassifier" and spent == {}
