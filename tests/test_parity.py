"""End-to-end truth: for every held-out row, the API answers what the unpickled model says."""
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import train
from support import ROOT, call, event, manifest


@pytest.fixture(scope="module")
def held_out():
    data = load_breast_cancer()
    _, X_test, _, y_test = train_test_split(
        data.data, data.target_names[data.target], test_size=train.TEST_SIZE,
        stratify=data.target_names[data.target], random_state=train.SEED)
    return list(data.feature_names), X_test, y_test


@pytest.fixture(scope="module")
def unpickled():
    with open(ROOT / "model" / manifest()["artifact"]["file"], "rb") as f:
        return pickle.load(f)


def test_held_out_split_matches_the_manifest(held_out):
    _, X_test, _ = held_out
    assert len(X_test) == manifest()["metrics"]["rows"] == 143


def test_every_held_out_row_gets_the_models_own_label_one_by_one(held_out, unpickled):
    names, X_test, _ = held_out
    expected = unpickled.predict(X_test)
    for row, label in zip(X_test, expected):
        body = call(event("POST", "/api/predict", body={"features": dict(zip(names, row))}))[2]
        assert body["predictions"] == [label]


def test_every_held_out_row_gets_the_models_own_label_and_probability_over_http(
        runtime, held_out, unpickled):
    names, X_test, _ = held_out
    status, _, body = runtime.json("/api/predict", method="POST",
                                   body={"instances": [dict(zip(names, r)) for r in X_test]})
    assert status == 200
    assert body["predictions"] == list(unpickled.predict(X_test))
    proba = np.array([[r["probabilities"][c] for c in unpickled.classes_] for r in body["results"]])
    np.testing.assert_allclose(proba, unpickled.predict_proba(X_test), rtol=0, atol=1e-12)
