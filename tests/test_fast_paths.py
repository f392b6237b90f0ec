"""The warm path's shortcuts give exactly what the long way gives.

One predict_proba call instead of predict + predict_proba, and whole-column validation of
numeric rows, are checked against the estimator's public methods and against the
value-by-value validation (which CSV bodies always take).
"""
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier,
                              HistGradientBoostingClassifier, RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from predict.errors import InvalidInput
from predict.inputs import validate
from predict.scoring import predict_all
from support import manifest

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
LABELS = np.array(["setosa", "versicolor", "virginica"], dtype=object)[Y_IRIS]


@pytest.mark.parametrize("estimator", [
    DecisionTreeClassifier(max_depth=2, random_state=0),  # shallow: leaves with tied classes
    RandomForestClassifier(n_estimators=4, max_depth=2, random_state=0),
    ExtraTreesClassifier(n_estimators=4, max_depth=2, random_state=0),
    HistGradientBoostingClassifier(max_iter=3),
    GradientBoostingClassifier(n_estimators=3, random_state=0),
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
], ids=lambda e: type(e).__name__)
def test_one_call_gives_the_estimators_own_labels_and_probabilities(estimator):
    estimator.fit(X_IRIS, LABELS)
    labels, proba = predict_all(estimator, X_IRIS, classification=True)
    assert list(labels) == list(estimator.predict(X_IRIS))
    np.testing.assert_array_equal(proba, estimator.predict_proba(X_IRIS))


FEATURES = [{"name": "a", "type": "number", "min": 0.0, "max": 1.0},
            {"name": "b", "type": "integer", "min": 1, "max": 5},
            {"name": "c", "type": "number"}]


def as_text(rows):
    return [{k: repr(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize("rows", [
    [{"a": 0.5, "b": 3, "c": -2.0}],
    [{"a": 1.5, "b": 0, "c": 1e30}, {"a": -0.1, "b": 2.0, "c": 0}, {"a": 0.0, "b": 5, "c": 3}],
])
def test_whole_column_validation_matches_value_by_value(rows):
    fast_X, fast_warnings = validate(rows, FEATURES)
    slow_X, slow_warnings = validate(as_text(rows), FEATURES, text=True)
    np.testing.assert_array_equal(fast_X, slow_X)
    assert fast_warnings == slow_warnings


@pytest.mark.parametrize("changes", [
    {"a": "0.5"}, {"b": 2.5}, {"a": True}, {"c": None}, {"a": 1e39}, {"c": 10 ** 400},
    {"d": 1.0},
])
def test_rows_the_columns_cannot_take_get_the_value_by_value_errors(changes):
    rows = [{"a": 0.5, "b": 3, "c": 1.0}, {"a": 0.5, "b": 3, "c": 1.0, **changes}]
    with pytest.raises(InvalidInput) as err:
        validate(rows, FEATURES)
    assert err.value.details[0]["row"] == 1


def test_the_committed_models_examples_validate_alike_both_ways():
    features = manifest()["features"]
    rows = [ex["features"] for ex in manifest()["examples"]]
    fast_X, fast_warnings = validate(rows, features)
    slow_X, slow_warnings = validate(as_text(rows), features, text=True)
    np.testing.assert_array_equal(fast_X, slow_X)
    assert fast_warnings == slow_warnings
