"""Explanations of the models people use: for every reference row, the base value plus the
contributions equals the prediction in the space the explanation names, and contributions
are per input feature (a one-hot string column folds back to its one column)."""
import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

import fitted
from support import call, event
from test_fitted_models import package_kind

EXPLAINED = {**fitted.ENSEMBLES, "frame-classifier": fitted.frame_classifier,
             "frame-regressor": fitted.frame_regressor}


def served_prediction(fit, result, explanation):
    """Return the estimator's own prediction, on the DataFrame, in the explanation's space."""
    est = fit.estimator
    frame = fit.frame if hasattr(est, "feature_names_in_") else fit.frame.to_numpy()
    if explanation["space"] == "value":
        return est.predict(frame)
    if explanation["space"] == "probability":
        return est.predict_proba(frame)[:, list(est.classes_).index(explanation["target"])]
    raw = est.decision_function(frame)
    if raw.ndim == 2:  # one score per class
        return raw[:, list(est.classes_).index(explanation["target"])]
    return raw if explanation["target"] == est.classes_[1] else -raw  # binary: for classes_[1]


@pytest.mark.parametrize("kind", list(EXPLAINED))
def test_base_value_plus_contributions_is_the_prediction_on_every_reference_row(
        tmp_path, monkeypatch, kind):
    fit, manifest, _ = package_kind(kind, tmp_path, monkeypatch, kinds=EXPLAINED)
    status, _, body = call(event("POST", "/api/predict", body={"instances": fitted.rows(fit.frame)}))
    assert status == 200
    names = {f["name"] for f in manifest["features"]}
    for i, result in enumerate(body["results"]):
        explanation = result["explanation"]
        assert explanation["method"] == ("linear" if kind.startswith("frame") else "tree_paths")
        assert explanation["target"] == body["predictions"][i]
        assert {c["feature"] for c in explanation["contributions"]} <= names
        total = explanation["base_value"] + sum(c["contribution"]
                                                for c in explanation["contributions"])
        expected = served_prediction(fit, result, explanation)[i]
        assert total == pytest.approx(expected, abs=1e-9), (i, explanation)


def test_a_one_hot_column_is_explained_as_its_source_feature(tmp_path, monkeypatch):
    fit, manifest, _ = package_kind("frame-classifier", tmp_path, monkeypatch)
    row = {"rooms": 3, "area": 80.0, "city": "Oslo"}
    status, _, body = call(event("POST", "/api/predict", body={"features": row}))
    explanation = body["results"][0]["explanation"]
    assert sorted(c["feature"] for c in explanation["contributions"]) == ["area", "city", "rooms"]
    pre, linear = fit.estimator[:-1], fit.estimator[-1]
    encoded = pre.transform(pd.DataFrame([row]))[0]
    names = list(pre.get_feature_names_out())
    city = sum(linear.coef_[0][j] * encoded[j] for j, n in enumerate(names) if "city" in n)
    sign = 1 if explanation["target"] == linear.classes_[1] else -1
    got = next(c["contribution"] for c in explanation["contributions"] if c["feature"] == "city")
    assert got == pytest.approx(sign * city, abs=1e-12)


def test_a_model_without_an_explanation_says_so_with_null(tmp_path, monkeypatch):
    table = fitted.houses()
    X = table[["rooms", "area"]]
    est = KNeighborsClassifier(n_neighbors=5).fit(X, table["dear"])
    fit = fitted._save(tmp_path, est, table, "dear", how="pickle", features=["rooms", "area"])
    package_kind("knn", tmp_path, monkeypatch, kinds={"knn": lambda folder: fit})
    status, _, body = call(event("POST", "/api/predict", body={"instances": fitted.rows(X[:2])}))
    assert status == 200
    assert [r["explanation"] for r in body["results"]] == [None, None]
    assert body["predictions"] == list(est.predict(X[:2]))


def walked_contributions(forest, x: np.ndarray, k: int) -> np.ndarray:
    """Saabas by hand for one row: walk each tree from its root, crediting each step's change
    of class k's probability to the split's feature; average over the trees."""
    out = np.zeros(len(x))
    for tree_model in forest.estimators_:
        tree = tree_model.tree_
        value = tree.value[:, 0, :] / tree.value[:, 0, :].sum(axis=1, keepdims=True)
        node = 0
        while tree.children_left[node] >= 0:
            f = tree.feature[node]
            nxt = tree.children_left[node] if x[f] <= tree.threshold[node] \
                else tree.children_right[node]
            out[f] += value[nxt, k] - value[node, k]
            node = nxt
    return out / len(forest.estimators_)


def test_forest_contributions_are_those_of_each_tree_walked_by_hand(tmp_path, monkeypatch):
    fit, manifest, _ = package_kind("forest-joblib-compressed", tmp_path, monkeypatch)
    status, _, body = call(event("POST", "/api/predict", body={"instances": fitted.rows(fit.frame)}))
    X = fit.frame.to_numpy(dtype=float)
    names = list(fit.frame.columns)
    for i, result in enumerate(body["results"]):
        k = list(fit.estimator.classes_).index(result["label"])
        expected = walked_contributions(fit.estimator, X[i].astype(np.float32), k)
        got = {c["feature"]: c["contribution"] for c in result["explanation"]["contributions"]}
        np.testing.assert_allclose([got.get(n, 0.0) for n in names], expected, atol=1e-12)
