"""Why the model answered what it did, per row.

Owns: for decision trees, the decision path in readable steps and each feature's
contribution to the predicted probability (or value) along that path, so that the base
value plus the contributions equals the prediction; for linear models, each feature's
contribution to the decision function. Tree ensembles and pipelines whose encoded columns
fold back to their inputs: explain_ensemble.py. Other estimators get no explanation.
"""
from __future__ import annotations

import numpy as np

from . import explain_ensemble


def _final_step(estimator):
    steps = getattr(estimator, "steps", None)
    return (estimator[:-1], steps[-1][1]) if steps else (None, estimator)


def explain_rows(estimator, X: np.ndarray, names: list[str], predicted: list) -> list[dict | None]:
    """Given the estimator, its input rows and its predictions, return one explanation per row."""
    head, final = _final_step(estimator)
    others = explain_ensemble.explain(estimator, X, names, predicted)
    if others is not None:  # tree ensembles; pipelines whose encoded columns fold back
        return others
    if hasattr(final, "tree_") and head is None:
        return _tree(final, X, names, predicted)
    if hasattr(final, "coef_") and hasattr(final, "intercept_"):
        Z = head.transform(X) if head is not None else X
        Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z, dtype=float)
        if Z.shape[1] == len(names):
            return _linear(final, Z, names, predicted)
    return [None] * len(X)


def _contribution_list(names: list[str], values: np.ndarray) -> list[dict]:
    pairs = [(n, v) for n, v in zip(names, values.tolist()) if v != 0]
    pairs.sort(key=lambda p: -abs(p[1]))  # stable: equal sizes keep the feature order
    return [{"feature": n, "contribution": v} for n, v in pairs]


def _tree(tree_model, X, names, predicted) -> list[dict]:
    tree = tree_model.tree_
    X = np.asarray(X, dtype=float)
    classes = getattr(tree_model, "classes_", None)
    values = tree.value[:, 0, :]
    if classes is not None:
        values = values / values.sum(axis=1, keepdims=True)
    # Plain lists: indexing them per node is far cheaper than indexing numpy arrays.
    by_class = values.T.tolist()
    feature, threshold = tree.feature.tolist(), tree.threshold.tolist()
    left = tree.children_left.tolist()
    paths = tree_model.decision_path(X)
    out = []
    for i, label in enumerate(predicted):
        k = int(np.flatnonzero(classes == label)[0]) if classes is not None else 0
        value = by_class[k]
        row = X[i].tolist()
        nodes = sorted(paths.indices[paths.indptr[i]:paths.indptr[i + 1]].tolist())
        contrib = np.zeros(len(names))  # node ids grow with depth: `nodes` runs root to leaf
        steps = []
        for parent, child in zip(nodes[:-1], nodes[1:]):
            j, cut = feature[parent], threshold[parent]
            contrib[j] += value[child] - value[parent]
            went_left = child == left[parent]
            steps.append({"feature": names[j], "op": "<=" if went_left else ">",
                          "threshold": cut, "value": row[j],
                          "text": f"{names[j]} is {row[j]:.4g}, "
                                  f"{'at most' if went_left else 'above'} {cut:.4g}"})
        out.append({"method": "decision_path",
                    "space": "probability" if classes is not None else "value",
                    "target": label, "base_value": value[nodes[0]],
                    "contributions": _contribution_list(names, contrib), "path": steps})
    return out


def _linear(linear_model, Z, names, predicted) -> list[dict]:
    coef = np.atleast_2d(linear_model.coef_)
    intercept = np.atleast_1d(linear_model.intercept_)
    classes = getattr(linear_model, "classes_", None)
    out = []
    for i, label in enumerate(predicted):
        if classes is None:
            row, sign, space = 0, 1.0, "value"
        elif len(coef) == 1:  # binary: one decision function, positive for classes_[1]
            row, sign, space = 0, (1.0 if label == classes[1] else -1.0), "log-odds"
        else:
            row, sign, space = int(np.flatnonzero(classes == label)[0]), 1.0, "log-odds"
        out.append({"method": "linear", "space": space, "target": label,
                    "base_value": float(sign * intercept[row]),
                    "contributions": _contribution_list(names, sign * coef[row] * Z[i])})
    return out
