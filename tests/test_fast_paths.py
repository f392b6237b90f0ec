"""The warm path's shortcuts give exactly what the long way gives.

One predict_proba call instead of predict + predict_proba, a single tree called without its
input checks, a tree's explanation from facts kept per model, and whole-column validation of
numeric rows, are checked against the estimator's public methods and against the
value-by-value validation (which CSV bodies always take).
"""
import json

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier,
                              HistGradientBoostingClassifier, RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import (DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier,
                          ExtraTreeRegressor)

from predict.errors import InvalidInput
from predict.explain import explain_rows
from predict.inputs import validate
from predict.scoring import predict_all
from predict.web import dumps
from support import ROOT, manifest
from test_explain import NAMES, held_out_rows, sample_rows

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
LABELS = np.array(["setosa", "versicolor", "virginica"], dtype=object)[Y_IRIS]


@pytest.mark.parametrize("estimator", [
    DecisionTreeClassifier(max_depth=2, random_state=0),  # shallow: leaves with tied classes
    RandomForestClassifier(n_estimators=4, max_depth=2, random_state=0),
    ExtraTreesClassifier(n_estimators=4, max_depth=2, random_state=0),
    ExtraTreeClassifier(random_state=0),
    HistGradientBoostingClassifier(max_iter=3),
    GradientBoostingClassifier(n_estimators=3, random_state=0),
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
], ids=lambda e: type(e).__name__)
def test_one_call_gives_the_estimators_own_labels_and_probabilities(estimator):
    estimator.fit(X_IRIS, LABELS)
    labels, proba = predict_all(estimator, X_IRIS, classification=True)
    assert list(labels) == list(estimator.predict(X_IRIS))
    np.testing.assert_array_equal(proba, estimator.predict_proba(X_IRIS))


@pytest.mark.parametrize("estimator", [
    DecisionTreeRegressor(max_depth=3, random_state=0), ExtraTreeRegressor(random_state=0),
], ids=lambda e: type(e).__name__)
def test_one_tree_regressor_call_gives_the_estimators_own_values(estimator):
    estimator.fit(X_IRIS[:, :3], X_IRIS[:, 3])
    values, proba = predict_all(estimator, X_IRIS[:, :3], classification=False)
    np.testing.assert_array_equal(values, estimator.predict(X_IRIS[:, :3]))
    assert proba is None


def test_a_tree_given_rows_with_other_columns_refuses_them_rather_than_walk_them():
    """The tree's own walk checks nothing: the shortcut is only for rows with its columns."""
    tree = DecisionTreeClassifier(random_state=0).fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="3 features"):
        predict_all(tree, X_IRIS[:, :3], classification=True)
    with pytest.raises(ValueError, match="3 features"):
        explain_rows(tree, X_IRIS[:, :3], ["a", "b", "c"], list(Y_IRIS))
    with pytest.raises(ValueError, match="not finite"):  # its JSON could not hold them
        explain_rows(tree, np.full((1, 4), np.nan), ["a", "b", "c", "d"], [0])


def the_committed_tree():
    import pickle
    model = pickle.loads((ROOT / "model" / manifest()["artifact"]["file"]).read_bytes())
    return model, np.array(held_out_rows() + sample_rows()), NAMES


def an_iris_tree(estimator):
    def build():
        return estimator.fit(X_IRIS, Y_IRIS), X_IRIS, ["a", "b", "c", "d"]
    return build


def an_iris_regression_tree():
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X_IRIS[:, :3], X_IRIS[:, 3])
    return tree, X_IRIS[:, :3], ["a", "b", "c"]


def readable(cut, low, high, x, *, above):
    """A short decimal just past the cut on one side, in (low, high], within a tenth of the
    distance from x: the shortest that the tree, comparing in float32, sees past the cut."""
    magnitude = int(np.floor(np.log10(abs(cut)))) if cut else 0
    for digits in range(3, 18):
        scale = 10.0 ** (digits - 1 - magnitude)
        step = np.ceil(cut * scale) if above else np.floor(cut * scale)
        if above and step / scale <= cut:
            step += 1
        candidate = float(step / scale)
        seen = float(np.float32(candidate))
        if ((cut < seen <= high) if above else (low < seen <= cut)) and \
                abs(candidate - cut) <= abs(x - cut) / 10:
            return candidate
    return float(str(np.nextafter(np.float32(cut), np.float32(np.inf if above else -np.inf))))


def just_past(cut, *, above):
    """The float32 nearest the cut that the tree sends to that side of it."""
    seen = np.float32(cut)  # compared as float64: NumPy would compare with a float in float32
    if above and float(seen) <= cut:
        return float(np.nextafter(seen, np.float32(np.inf)))
    if not above and float(seen) > cut:
        return float(np.nextafter(seen, np.float32(-np.inf)))
    return float(seen)


def long_way(tree, X, names, predicted):
    """A tree's explanation row by row from its public methods: decision_path and apply for
    the path and leaf, predict on every side of every threshold of every path measurement."""
    values = tree.tree_.value[:, 0, :]
    classes = getattr(tree, "classes_", None)
    if classes is not None:
        values = values / values.sum(axis=1, keepdims=True)
    paths, leaves = tree.decision_path(X), tree.apply(X)
    feature, threshold = tree.tree_.feature, tree.tree_.threshold
    out = []
    for i, label in enumerate(predicted):
        k = list(classes).index(label) if classes is not None else 0
        nodes = sorted(paths[i].indices)
        contrib, steps = np.zeros(len(names)), []
        for up, down in zip(nodes[:-1], nodes[1:]):
            j, cut, left = feature[up], threshold[up], down == tree.tree_.children_left[up]
            contrib[j] += values[down, k] - values[up, k]
            steps.append({"feature": names[j], "op": "<=" if left else ">", "threshold": cut,
                          "value": X[i, j], "before": values[up, k], "after": values[down, k],
                          "text": f"{names[j]} is {X[i, j]:.4g}, "
                                  f"{'at most' if left else 'above'} {cut:.4g}"})
        order = sorted((j for j in range(len(names)) if contrib[j]), key=lambda j: -abs(contrib[j]))
        samples = tree.tree_.weighted_n_node_samples[leaves[i]]
        ex = {"method": "decision_path", "space": "value" if classes is None else "probability",
              "target": label, "base_value": values[0, k],
              "contributions": [{"feature": names[j], "contribution": contrib[j]} for j in order],
              "path": steps, "leaf": {"samples": round(samples)}}
        if classes is not None:
            ex["leaf"]["counts"] = {str(c): round(values[leaves[i], c_k] * samples)
                                    for c_k, c in enumerate(classes)}
            ex["changes"] = long_way_changes(tree, X[i], names, steps, label)
        out.append(ex)
    return out


def long_way_changes(tree, x, names, steps, label):
    changes = []
    for j in dict.fromkeys(names.index(s["feature"]) for s in steps):
        cuts = sorted(set(tree.tree_.threshold[tree.tree_.feature == j].tolist()))
        tries = [(k, x[j] <= c, just_past(c, above=x[j] <= c)) for k, c in enumerate(cuts)]
        grid = np.repeat([x], len(tries), axis=0)
        grid[:, j] = [value for _, _, value in tries]
        others = [(abs(value - x[j]), k, above, answer) for (k, above, value), answer
                  in zip(tries, tree.predict(grid)) if answer != label]
        if others:
            _, k, above, answer = min(others, key=lambda t: t[0])  # the first of equals
            bounds = [-np.inf, *cuts, np.inf]
            changes.append({"feature": names[j], "from": x[j],
                            "to": readable(cuts[k], bounds[k], bounds[k + 2], x[j], above=above),
                            "op": ">" if above else "<=", "threshold": cuts[k],
                            "label": answer})
    return sorted(changes, key=lambda c: abs(c["to"] - c["from"]) / (abs(c["from"]) or 1.0))


@pytest.mark.parametrize("build", [
    the_committed_tree,
    an_iris_tree(DecisionTreeClassifier(max_depth=3, random_state=0)),  # round cuts
    an_iris_tree(DecisionTreeClassifier(random_state=0)),  # grown out: many cuts a measurement
    an_iris_tree(ExtraTreeClassifier(random_state=0)),
    an_iris_regression_tree,
], ids=["committed", "iris-depth-3", "iris-full", "iris-extra", "iris-regression"])
def test_a_trees_explanation_is_the_long_way_on_every_reference_row(build):
    tree, X, names = build()
    predicted = list(tree.predict(X))
    fast = [e.text for e in explain_rows(tree, X, names, predicted)]  # written as JSON
    assert [json.loads(e) for e in fast] == long_way(tree, X, names, predicted)
    assert [dumps(e) for e in long_way(tree, X, names, predicted)] == fast  # byte for byte
    again = [e.text for e in explain_rows(tree, X, names, predicted)]  # from the kept facts
    assert again == fast
    one_by_one = [explain_rows(tree, X[i:i + 1], names, predicted[i:i + 1])[0].text
                  for i in range(len(X))]
    assert one_by_one == fast


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


def test_a_row_with_as_many_fields_but_another_name_gets_the_value_by_value_errors():
    rows = [{"a": 0.5, "b": 3, "c": 1.0}, {"a": 0.5, "b": 3, "d": 1.0}]
    with pytest.raises(InvalidInput) as err:
        validate(rows, FEATURES)
    assert [(d["row"], d["field"], d["code"]) for d in err.value.details] == [
        (1, "d", "unknown_feature"), (1, "c", "missing_feature")]


def test_the_committed_models_examples_validate_alike_both_ways():
    features = manifest()["features"]
    rows = [ex["features"] for ex in manifest()["examples"]]
    fast_X, fast_warnings = validate(rows, features)
    slow_X, slow_warnings = validate(as_text(rows), features, text=True)
    np.testing.assert_array_equal(fast_X, slow_X)
    assert fast_warnings == slow_warnings


def test_text_written_once_as_json_is_copied_into_the_answer_as_it_is():
    from predict.web import _MARK, JsonText
    doc = {"a": [JsonText('{"x":1.5}'), JsonText("[]")], "b": np.float64(0.25), "c": "%s"}
    assert dumps(doc) == '{"a":[{"x":1.5},[]],"b":0.25,"c":"%s"}'
    # NaN takes the slower walk, which writes it as null and keeps the texts
    assert dumps({"a": JsonText("2"), "n": float("nan")}) == '{"a":2,"n":null}'
    assert json.loads(dumps({"t": JsonText('"\\u00e9"')})) == {"t": "\u00e9"}
    with pytest.raises(ValueError, match="mark"):  # a string that is the mark is refused
        dumps({"a": JsonText("1"), "b": _MARK})


def test_a_regression_trees_answers_0_and_minus_0_are_written_each_as_itself():
    """0.0 and -0.0 are equal (one key of a dict) but not the same JSON."""
    X = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [2.0], [2.0]])
    tree = DecisionTreeRegressor(max_depth=2).fit(X, [-5e-324, 0, 0, 1, -1, 5, 5])
    rows = np.array([[1.0], [0.0]])
    predicted = list(tree.predict(rows))
    assert [str(p) for p in predicted] == ["0.0", "-0.0"]
    texts = [e.text for e in explain_rows(tree, rows, ["x"], predicted)]
    assert [json.loads(t)["target"] for t in texts] == predicted
    assert ['"target":0.0,' in texts[0], '"target":-0.0,' in texts[1]] == [True, True]
