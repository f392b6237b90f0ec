"""Packaging's model card: labels as the estimator gives them, figures equal to sklearn.metrics
on the rows they claim (held-out rows when told which), and a model directory written whole."""
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import package_model


@pytest.fixture(scope="module")
def cancer():
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


def _package(tmp_path, est, frame, y, *args, out="m"):
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(est))
    frame.assign(target=y).to_csv(tmp_path / "ref.csv", index=False)
    code = package_model.main([str(tmp_path / "model.pkl"), str(tmp_path / "ref.csv"),
                               "--target", "target", "--out", str(tmp_path / out), *args])
    manifest = (tmp_path / out / "manifest.json")
    return code, json.loads(manifest.read_text()) if manifest.exists() else None


def test_the_issues_0_1_logistic_regression_is_packaged_with_true_figures(tmp_path, cancer):
    X, y = cancer
    est = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    code, manifest = _package(tmp_path, est, X, y)
    assert code == 0
    assert manifest["labels"] == ["0", "1"] and manifest["classes"] == [0, 1]
    pred = est.predict(X)
    m = manifest["metrics"]
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), abs=1e-6)
    assert m["confusion_matrix"]["matrix"] == metrics.confusion_matrix(y, pred).tolist()
    assert m["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y, est.predict_proba(X)[:, 1]), abs=1e-6)
    assert m["roc_curve"]["positive"] == 1 and m["held_out"] is False


def test_a_tree_with_bool_labels_gets_its_own_accuracy(tmp_path, cancer):
    X, y = cancer
    est = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y.astype(bool))
    code, manifest = _package(tmp_path, est, X, y.astype(bool))
    assert code == 0
    pred = est.predict(X)
    m = manifest["metrics"]
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y.astype(bool), pred), abs=1e-6)
    assert m["per_class"]["False"]["support"] == int((~y.astype(bool)).sum())
    assert manifest["classes"] == [False, True]


@pytest.mark.parametrize("classes, texts, expected", [
    (np.array([False, True]), ["True", "false", "1", "0", " TRUE "], [True, False, True, False, True]),
    (np.array([0, 1]), ["0", "1", "1.0"], [0, 1, 1]),
    (np.array([3, 5, 7]), ["7", "3"], [7, 3]),
    (np.array([1.0, 2.0]), ["1.0", "2", "2.0"], [1.0, 2.0, 2.0]),
    (np.array(["cheap", "dear"], dtype=object), ["dear", "cheap"], ["dear", "cheap"]),
])
def test_target_cells_become_the_models_own_labels(classes, texts, expected):
    est = DecisionTreeClassifier()
    est.classes_ = classes
    got = package_model.target_values(est, texts)
    assert got.tolist() == expected and got.dtype.kind == classes.dtype.kind


@pytest.mark.parametrize("classes, texts", [
    (np.array([False, True]), ["yes"]), (np.array([0, 1]), ["0.5"]), (np.array([0, 1]), ["a"])])
def test_a_target_that_is_not_the_models_labels_is_refused(classes, texts):
    est = DecisionTreeClassifier()
    est.classes_ = classes
    with pytest.raises(package_model.PackagingError, match="do not match the model's"):
        package_model.target_values(est, texts)


def _split_model(cancer, **split):
    X, y = cancer
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=3,
                                                        **split)
    est = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
    return est, X_test, y_test


def _assert_held_out_figures(manifest, est, X_test, y_test):
    m = manifest["metrics"]
    pred = est.predict(X_test)
    assert m["held_out"] is True and m["rows"] == len(y_test)
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y_test, pred), abs=1e-6)
    assert m["confusion_matrix"]["matrix"] == metrics.confusion_matrix(y_test, pred).tolist()
    test_rows = {tuple(r) for r in X_test.itertuples(index=False)}
    for example in manifest["examples"]:  # examples are held-out rows too
        assert tuple(example["features"][c] for c in X_test.columns) in test_rows


def test_a_held_out_csv_gives_the_cards_figures(tmp_path, cancer):
    est, X_test, y_test = _split_model(cancer)
    X, y = cancer
    X.drop(X_test.index).assign(target=y.drop(y_test.index)).to_csv(tmp_path / "train.csv",
                                                                     index=False)
    X_test[X_test.columns[::-1]].assign(target=y_test).to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(est))
    assert package_model.main([str(tmp_path / "model.pkl"), str(tmp_path / "train.csv"),
                               "--target", "target", "--held-out", str(tmp_path / "test.csv"),
                               "--out", str(tmp_path / "m")]) == 0
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    _assert_held_out_figures(manifest, est, X_test, y_test)
    assert manifest["training_data"]["held_out"] == {"file": "test.csv", "rows": len(y_test)}
    assert manifest["training_data"]["rows"] == len(X) - len(y_test)


@pytest.mark.parametrize("stratify", [False, True])
def test_a_stated_split_holds_out_the_rows_train_test_split_kept_aside(tmp_path, cancer,
                                                                       stratify):
    X, y = cancer
    est, X_test, y_test = _split_model(cancer, **({"stratify": y} if stratify else {}))
    code, manifest = _package(tmp_path, est, X, y, "--split", "0.25", "--seed", "3",
                              *(["--stratify"] if stratify else []))
    assert code == 0
    _assert_held_out_figures(manifest, est, X_test, y_test)
    split = manifest["training_data"]["split"]
    assert split == {"train_rows": len(X) - len(y_test), "test_rows": len(y_test),
                     "test_size": 0.25, "stratified": stratify, "seed": 3}
    mins = {f["name"]: f["min"] for f in manifest["features"]}  # the schema: training rows only
    assert mins["mean radius"] == X.drop(X_test.index)["mean radius"].min()


@pytest.mark.parametrize("args, message", [
    (["--split", "1.5"], "between 0 and 1"),
    (["--held-out", "missing.csv"], "cannot read"),
])
def test_a_wrong_held_out_request_is_refused_and_writes_nothing(tmp_path, cancer, capsys, args,
                                                                message):
    X, y = cancer
    est = DecisionTreeClassifier(max_depth=1).fit(X, y)
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    code, manifest = _package(tmp_path, est, X, y, *args)
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_failure_leaves_no_directory_and_no_scratch(tmp_path, cancer, capsys):
    X, y = cancer
    est = DecisionTreeClassifier(max_depth=1).fit(X, y)
    code, _ = _package(tmp_path, est, X, y, "--positive", "2")
    assert code == 2 and "--positive must be one of" in capsys.readouterr().err
    (tmp_path / "taken").write_text("a file")
    code, _ = _package(tmp_path, est, X, y, out="taken")
    assert code == 2 and "exists and is not a directory" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pkl", "ref.csv", "taken"]


def test_packaging_again_replaces_the_model_and_keeps_other_files(tmp_path, cancer):
    X, y = cancer
    first = DecisionTreeClassifier(max_depth=1).fit(X, y)
    assert _package(tmp_path, first, X, y)[0] == 0
    (tmp_path / "m" / "notes.txt").write_text("mine")
    second = DecisionTreeClassifier(max_depth=3).fit(X, y)
    code, manifest = _package(tmp_path, second, X, y)
    assert code == 0
    assert pickle.loads((tmp_path / "m" / "model.pkl").read_bytes()).max_depth == 3
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "model.pkl", "ref.csv"]
