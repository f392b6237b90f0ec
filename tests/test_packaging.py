"""Any packaged scikit-learn model is served by the unchanged function and local runtime."""
import csv
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor

import package_model
from support import LocalRuntime, call, event

RNG = np.random.default_rng(7)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def iris_model(tmp_path):
    data = load_iris()
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    X, y = data.data, data.target_names[data.target]
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    write_csv(tmp_path / "ref.csv", [*names, "species"], [[*r, t] for r, t in zip(X, y)])
    return est, X, "species"


def regression_model(tmp_path):
    rooms = RNG.integers(1, 7, 120)
    area = RNG.uniform(20, 200, 120).round(1)
    price = 1000 * rooms + 30 * area + RNG.normal(0, 50, 120)
    X = np.column_stack([rooms, area])
    est = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, price)
    write_csv(tmp_path / "ref.csv", ["rooms", "area", "price"],
              [[int(r), a, p] for r, a, p in zip(rooms, area, price)])
    return est, X, "price"


def categorical_model(tmp_path):
    colour = RNG.choice(["red", "green", "blue"], 150)
    size = RNG.uniform(0, 10, 150).round(2)
    y = np.where((colour == "red") | (size > 7), "yes", "no")
    X = np.column_stack([colour, size]).astype(object)
    X[:, 1] = X[:, 1].astype(float)
    pre = ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), [0])],
                            remainder="passthrough")
    est = make_pipeline(pre, LogisticRegression()).fit(X, y)
    write_csv(tmp_path / "ref.csv", ["colour", "size", "buys"], [[c, s, t] for c, s, t in
                                                                   zip(colour, size, y)])
    return est, X, "buys"


KINDS = {"multiclass-pipeline": iris_model, "regression": regression_model,
         "categorical-pipeline": categorical_model}


def serve(kind, tmp_path, monkeypatch):
    """Fit, pickle and package one kind of model; serve it through MODEL_DIR."""
    est, X, target = KINDS[kind](tmp_path)
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(est, f)
    out = tmp_path / "served"
    manifest = package_model.package(tmp_path / "model.pkl", tmp_path / "ref.csv", out,
                                     target=target, name=kind)
    monkeypatch.setenv("MODEL_DIR", str(out))
    return kind, est, X, manifest, out


@pytest.fixture(params=list(KINDS))
def packaged(request, tmp_path, monkeypatch):
    return serve(request.param, tmp_path, monkeypatch)


def rows_of(manifest, X):
    names = [f["name"] for f in manifest["features"]]
    return [{n: (v if isinstance(v, str) else float(v)) for n, v in zip(names, r)} for r in X]


def test_the_handler_answers_what_the_estimator_says_for_every_reference_row(packaged):
    kind, est, X, manifest, _ = packaged
    status, _, body = call(event("POST", "/api/predict",
                                 body={"instances": rows_of(manifest, X)}))
    assert status == 200
    expected = est.predict(X)
    if manifest["task"] == "classification":
        assert body["predictions"] == list(expected)
        proba = [[r["probabilities"][str(c)] for c in est.classes_] for r in body["results"]]
        np.testing.assert_allclose(proba, est.predict_proba(X), atol=1e-12)
    else:
        np.testing.assert_allclose(body["predictions"], expected, atol=1e-9)
        assert all("probabilities" not in r for r in body["results"])


def test_the_local_runtime_serves_the_packaged_model(packaged):
    kind, est, X, manifest, out = packaged
    server = LocalRuntime(env={"MODEL_DIR": str(out)})
    try:
        status, _, card = server.json("/api/model")
        assert status == 200 and card["name"] == kind
        status, _, body = server.json("/api/predict", method="POST",
                                      body={"instances": rows_of(manifest, X)})
        assert status == 200
        assert len(body["predictions"]) == len(X)
        if manifest["task"] == "regression":
            np.testing.assert_allclose(body["predictions"], est.predict(X), atol=1e-9)
        else:
            assert body["predictions"] == list(est.predict(X))
    finally:
        server.stop()


def test_the_manifest_describes_types_ranges_and_metrics(packaged):
    kind, est, X, manifest, _ = packaged
    types = {f["name"]: f["type"] for f in manifest["features"]}
    if kind == "categorical-pipeline":
        assert types == {"colour": "categorical", "size": "number"}
        colour = manifest["features"][0]
        assert colour["categories"] == ["blue", "green", "red"]
    if kind == "regression":
        assert types == {"rooms": "integer", "area": "number"}
        assert set(manifest["metrics"]) >= {"r2", "mae", "rmse"}
    if kind == "multiclass-pipeline":
        assert manifest["labels"] == ["setosa", "versicolor", "virginica"]
        assert manifest["metrics"]["confusion_matrix"]["labels"] == manifest["labels"]
        assert len(manifest["examples"]) == 3
    for f in manifest["features"]:
        if f["type"] != "categorical":
            assert f["min"] <= f["median"] <= f["max"]


def test_an_unseen_category_is_a_400_listing_the_known_ones(tmp_path, monkeypatch):
    serve("categorical-pipeline", tmp_path, monkeypatch)
    status, _, body = call(event("POST", "/api/predict",
                                 body={"features": {"colour": "purple", "size": 2.0}}))
    assert status == 400
    assert body["error"]["code"] == "unseen_category"
    assert body["error"]["details"][0]["expected"] == ["blue", "green", "red"]
    assert "purple" not in json.dumps(body)


def test_an_integer_feature_rejects_a_fraction(tmp_path, monkeypatch):
    serve("regression", tmp_path, monkeypatch)
    status, _, body = call(event("POST", "/api/predict",
                                 body={"features": {"rooms": 2.5, "area": 50}}))
    assert status == 400
    assert body["error"]["details"][0]["field"] == "rooms"


def test_the_command_line_packages_a_model(tmp_path, capsys):
    est, X, target = iris_model(tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    assert package_model.main([str(tmp_path / "m.pkl"), str(tmp_path / "ref.csv"),
                               "--target", target, "--out", str(tmp_path / "out")]) == 0
    assert "MODEL_DIR=" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["name"] == "m"


def test_a_card_file_gives_the_model_words_for_people(tmp_path, monkeypatch):
    est, X, target = iris_model(tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    card = {"title": "Iris species", "limitations": ["Only three species."],
            "label_descriptions": {"setosa": "bristle-pointed iris"},
            "features": {"petal length": {"label": "Petal length", "unit": "cm"}}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    manifest = package_model.package(tmp_path / "m.pkl", tmp_path / "ref.csv", tmp_path / "out",
                                     target=target, card_path=tmp_path / "card.json")
    assert manifest["title"] == "Iris species"
    assert manifest["limitations"] == ["Only three species."]
    assert manifest["label_descriptions"] == {"setosa": "bristle-pointed iris"}
    petal = next(f for f in manifest["features"] if f["name"] == "petal length")
    assert (petal["label"], petal["unit"], petal["type"]) == ("Petal length", "cm", "number")
    sepal = next(f for f in manifest["features"] if f["name"] == "sepal length")
    assert sepal["label"] == "sepal length"


def _bad_card(tmp_path):
    est, _, _ = iris_model(tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    (tmp_path / "card.json").write_text(json.dumps({"features": {"colour": {"label": "x"}}}))


def _unfitted(tmp_path):
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(LogisticRegression()))


def _no_predict(tmp_path):
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(StandardScaler().fit([[1.0], [2.0]])))


def _clusterer(tmp_path):
    from sklearn.cluster import KMeans
    fitted = KMeans(n_clusters=2, n_init=1, random_state=0).fit([[0.0], [1.0], [5.0]])
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(fitted))


def _not_a_pickle(tmp_path):
    (tmp_path / "m.pkl").write_bytes(b"this is not a pickle")


def _wrong_columns(tmp_path):
    est, _, _ = iris_model(tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    write_csv(tmp_path / "ref.csv", ["a", "b", "species"], [[1, 2, "setosa"]])


def _missing_target(tmp_path):
    est, _, _ = iris_model(tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    rows = list(csv.reader((tmp_path / "ref.csv").read_text().splitlines()))
    write_csv(tmp_path / "ref.csv", [*rows[0][:4], "kind"], rows[1:])


def _unreadable_csv(tmp_path):
    est, _, _ = iris_model(tmp_path)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    (tmp_path / "ref.csv").unlink()


def _named_columns_by_dataframe(tmp_path):
    # As if fitted on a DataFrame whose column names are not the CSV's.
    est, X, _ = iris_model(tmp_path)
    est[0].feature_names_in_ = np.array(["w", "x", "y", "z"], dtype=object)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))


@pytest.mark.parametrize("make, message", [
    (_unfitted, "not fitted"),
    (_no_predict, "no predict()"),
    (_clusterer, "neither a classifier nor a regressor"),
    (_not_a_pickle, "not a readable pickle"),
    (_wrong_columns, "takes 4 features"),
    (_missing_target, "target column 'species' is not in"),
    (_unreadable_csv, "cannot read"),
    (_named_columns_by_dataframe, "missing from the CSV: w, x, y, z"),
    (_bad_card, "describes features the model does not take: colour"),
])
def test_packaging_refuses_what_it_cannot_serve_and_says_why(tmp_path, capsys, make, message):
    if make not in (_wrong_columns, _missing_target, _unreadable_csv, _named_columns_by_dataframe,
                    _bad_card):
        write_csv(tmp_path / "ref.csv", ["a", "species"], [[1, "x"]])
    make(tmp_path)
    card = ["--card", str(tmp_path / "card.json")] if (tmp_path / "card.json").exists() else []
    code = package_model.main([str(tmp_path / "m.pkl"), str(tmp_path / "ref.csv"),
                               "--target", "species", "--out", str(tmp_path / "out"), *card])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# Refusals that name the true cause: each case fits or writes a real model file and CSV,
# runs the command line and reads what a person reads on stderr.

def _fitted_on_frame(tmp_path):
    import fitted
    return fitted.frame_classifier(tmp_path)


def _custom_function_in_main(tmp_path):
    """A FunctionTransformer whose function was defined in the saving script (__main__)."""
    script = ("import pickle, numpy as np\n"
              "from sklearn.pipeline import make_pipeline\n"
              "from sklearn.preprocessing import FunctionTransformer\n"
              "from sklearn.linear_model import LogisticRegression\n"
              "def shout(X):\n    return X * 2\n"
              "m = make_pipeline(FunctionTransformer(shout), LogisticRegression())\n"
              "m.fit(np.arange(8.0).reshape(4, 2), [0, 1, 0, 1])\n"
              f"pickle.dump(m, open({str(tmp_path / 'model.pkl')!r}, 'wb'))\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    write_csv(tmp_path / "reference.csv", ["a", "b", "y"], [[1, 2, 0], [3, 4, 1]])
    return ["--target", "y"]


def _custom_class_in_a_module(tmp_path):
    """A transformer class from the user's own importable module."""
    (tmp_path / "mytransforms.py").write_text(
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "class Doubler(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return X * 2\n")
    script = ("import pickle, sys, numpy as np\n"
              f"sys.path.insert(0, {str(tmp_path)!r})\n"
              "from mytransforms import Doubler\n"
              "from sklearn.pipeline import make_pipeline\n"
              "from sklearn.linear_model import LogisticRegression\n"
              "m = make_pipeline(Doubler(), LogisticRegression())\n"
              "m.fit(np.arange(8.0).reshape(4, 2), [0, 1, 0, 1])\n"
              f"pickle.dump(m, open({str(tmp_path / 'model.pkl')!r}, 'wb'))\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    sys.path.insert(0, str(tmp_path))  # importable where packaging runs: still not servable
    write_csv(tmp_path / "reference.csv", ["a", "b", "y"], [[1, 2, 0], [3, 4, 1]])
    return ["--target", "y"]


def _missing_package(tmp_path):
    """A pickle of an estimator from a package that is not installed (xgboost's, by its name)."""
    (tmp_path / "model.pkl").write_bytes(b"cxgboost.sklearn\nXGBClassifier\n(tR.")
    write_csv(tmp_path / "reference.csv", ["a", "y"], [[1, 0]])
    return ["--target", "y"]


def _other_sklearn_version(tmp_path):
    est, _, _ = iris_model(tmp_path)
    (tmp_path / "reference.csv").write_text((tmp_path / "ref.csv").read_text())
    (tmp_path / "model.pkl").write_bytes(claiming_version(pickle.dumps(est), "1.8.0"))
    return ["--target", "species"]


def _forgotten_target(tmp_path):
    _fitted_on_frame(tmp_path)
    return []


def _forgotten_target_by_position(tmp_path):
    est, _, _ = iris_model(tmp_path)
    (tmp_path / "reference.csv").write_text((tmp_path / "ref.csv").read_text())
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(est))
    return []


def _empty_cells(tmp_path):
    fit = _fitted_on_frame(tmp_path)
    lines = fit.data_file.read_text().splitlines()
    lines[2] = ",".join(["", *lines[2].split(",")[1:]])          # line 3, rooms
    lines[5] = ",".join([*lines[5].split(",")[:2], "", lines[5].split(",")[3]])  # line 6, city
    fit.data_file.write_text("\n".join(lines) + "\n")
    return ["--target", "dear"]


def _empty_target(tmp_path):
    fit = _fitted_on_frame(tmp_path)
    lines = fit.data_file.read_text().splitlines()
    lines[5] = ",".join([*lines[5].split(",")[:3], ""])       # line 6, dear
    fit.data_file.write_text("\n".join(lines) + "\n")
    return ["--target", "dear"]


def _many_empty_cells(tmp_path):
    fit = _fitted_on_frame(tmp_path)
    lines = fit.data_file.read_text().splitlines()
    lines[1:] = [",".join(["", *line.split(",")[1:]]) for line in lines[1:]]
    fit.data_file.write_text("\n".join(lines) + "\n")
    return ["--target", "dear"]


def claiming_version(data: bytes, version: str) -> bytes:
    """Return a pickle whose estimators claim another scikit-learn version (same length)."""
    import sklearn
    ours = sklearn.__version__.encode()
    assert len(version) == len(ours)  # the pickle's string lengths stay right
    stamp = bytes([0x8c, len(ours)])  # SHORT_BINUNICODE, as pickle writes short strings
    return data.replace(stamp + ours, stamp + version.encode())


def _runtime_version():
    import sklearn
    return sklearn.__version__


@pytest.mark.parametrize("make, messages", [
    (_custom_function_in_main, ["refers to 'shout', a custom function or class defined in the "
                                "script or notebook that saved the model (__main__)",
                                "only rebuilds scikit-learn, NumPy, SciPy and pandas objects"]),
    (_custom_class_in_a_module, ["the model uses mytransforms.Doubler, custom code outside "
                                 "scikit-learn, NumPy, SciPy and pandas"]),
    (_missing_package, ["needs the Python package 'xgboost', which is not installed here",
                        "pip install xgboost"]),
    (_other_sklearn_version, [f"was written by scikit-learn 1.8.0; this runtime serves with "
                              f"{_runtime_version()}",
                              f"pip install scikit-learn=={_runtime_version()}",
                              "--allow-version-mismatch"]),
    (_forgotten_target, ["not known to the model: dear). If it is the target, pass --target dear"]),
    (_forgotten_target_by_position, ["the model takes 4 features; the CSV has 5 columns",
                                     "If one of them is the target, pass --target <column>"]),
    (_empty_cells, ["has 2 empty cells; the model cannot take a missing value for city, "
                    "rooms: line 3 'rooms', line 6 'city'"]),
    (_empty_target, ["has 1 empty cell; the target column needs a value in every row: "
                     "line 6 'dear'"]),
    (_many_empty_cells, ["has 80 empty cells", "line 21 'rooms' (and 60 more)"]),
])
def test_packaging_names_the_true_cause_and_the_fix(tmp_path, capsys, monkeypatch, make,
                                                    messages):
    monkeypatch.setattr(sys, "path", list(sys.path))  # a case may make its module importable
    args = make(tmp_path)
    model_file = next(p for p in tmp_path.iterdir() if p.name.startswith("model."))
    code = package_model.main([str(model_file), str(tmp_path / "reference.csv"),
                               "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    for message in messages:
        assert message in err
    assert "Traceback" not in err and "Warning" not in err
    assert not (tmp_path / "out").exists()


def test_another_version_is_served_only_when_allowed_and_the_manifest_says_so(tmp_path,
                                                                            monkeypatch):
    _other_sklearn_version(tmp_path)
    manifest = package_model.package(tmp_path / "model.pkl", tmp_path / "reference.csv",
                                     tmp_path / "out", target="species",
                                     allow_version_mismatch=True)
    assert manifest["source"]["scikit-learn"] == "1.8.0"
    assert manifest["source"]["version_mismatch_allowed"] is True
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "out"))
    status, _, body = call(event("GET", "/api/model"))
    assert body["source"]["scikit-learn"] == "1.8.0"
    assert body["versions"]["scikit-learn"] == _runtime_version()


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("xz", 1)])
def test_joblib_files_compressed_or_not_are_served_as_one_verified_pickle(tmp_path, monkeypatch,
                                                                          compress):
    import hashlib

    import joblib
    est, X, target = iris_model(tmp_path)
    joblib.dump(est, tmp_path / "m.joblib", compress=compress)
    manifest = package_model.package(tmp_path / "m.joblib", tmp_path / "ref.csv", tmp_path / "out",
                                     target=target)
    data = (tmp_path / "out" / manifest["artifact"]["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["artifact"]["sha256"]
    assert pickle.loads(data).predict(X).tolist() == est.predict(X).tolist()
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "out"))
    status, _, body = call(event("POST", "/api/predict", body={"instances": X.tolist()}))
    assert status == 200 and body["predictions"] == est.predict(X).tolist()
