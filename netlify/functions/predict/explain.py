"""Why the model answered what it did, per row.

Owns: choosing the explanation for an estimator, and for linear models each feature's
contribution to the decision function. Single decision trees (the path, the leaf and what
would change the answer): explain_tree.py. Tree ensembles and pipelines whose encoded
columns fold back to their inputs: explain_ensemble.py. Other estimators get no explanation.
"""
from __future__ import annotations

import numpy as np

from . import explain_ensemble, explain_tree
from .web import JsonText


def _final_step(estimator):
    steps = getattr(estimator, "steps", None)
    return (estimator[:-1], steps[-1][1]) if steps else (None, estimator)


def explain_rows(estimator, X: np.ndarray, names: list[str],
                 predicted: list) -> list[dict | JsonText | None]:
    """Given the estimator, its input rows and its predictions, return one explanation per row
    (a single tree's already written as JSON)."""
    head, final = _final_step(estimator)
    others = explain_ensemble.explain(estimator, X, names, predicted)
    if others is not None:  # tree ensembles; pipelines whose encoded columns fold back
        return others
    if hasattr(final, "tree_") and head is None:
        return explain_tree.explain(final, X, names, predicted)
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
