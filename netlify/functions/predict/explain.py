"""Why the model answered what it did, per row.

Owns: choosing the explanation for an estimator, and the one linear explainer: for a linear
model, alone or after steps that are affine in its inputs (see explain_fold.py), each input's
exact part of the score. Single decision trees (the path, the leaf and what would change the
answer): explain_tree.py. Tree ensembles: explain_ensemble.py. Other estimators: None.
"""
from __future__ import annotations

import numpy as np

from . import explain_ensemble, explain_tree
from .explain_fold import explanations, fold, sklearn_kind, split, targets
from .web import JsonText

# Linear in their inputs, but not per class: one-vs-one scores are voted, not compared.
NOT_PER_CLASS = {"SVC", "NuSVC"}


def explain_rows(estimator, X, names: list[str], predicted: list, *,
                 reference=None) -> list[dict | JsonText | None]:
    """Given the estimator, its input rows, its predictions and a reference row (the typical
    case, in the same container as X, or None), return one explanation per row (a single
    tree's already written as JSON; None where there is no right one)."""
    head, final = split(estimator)
    if hasattr(final, "tree_") and head is None:
        return explain_tree.explain(final, X, names, predicted)
    found = explain_ensemble.explain(estimator, X, names, predicted)
    if found is None and hasattr(final, "coef_") and hasattr(final, "intercept_"):
        found = _linear(estimator, X, names, predicted, reference)
    return [None] * len(predicted) if found is None else found


def _linear(estimator, X, names: list[str], predicted: list, reference) -> list[dict] | None:
    """Each input's part of the linear score of the predicted label: the composed coefficient
    of each of its encoded columns times (its value - the reference row's value). The base
    value is the reference row's score (an encoded column the reference leaves empty or not a
    number is measured from zero)."""
    _, final = split(estimator)
    folded = fold(estimator, len(names))
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=float))
    intercept = np.broadcast_to(np.asarray(final.intercept_, dtype=float).ravel(), len(coef))
    classes = getattr(final, "classes_", None)
    per_class = classes is None and len(coef) == 1 or classes is not None and \
        len(coef) in (1, len(classes)) and sklearn_kind(final) not in NOT_PER_CLASS
    if folded is None or not per_class or coef.shape[1] != len(folded.columns):
        return None
    weights = coef @ folded.matrix  # per score, per atom
    values = folded.values(X)
    base_values = np.zeros((1, values.shape[1])) if reference is None else \
        np.nan_to_num(folded.values(reference), nan=0.0, posinf=0.0, neginf=0.0)
    space = "log-odds" if hasattr(final, "predict_proba") else "score"
    target = targets(classes, len(coef), predicted, space=space)
    w = weights[target.k] * target.sign[:, None]
    parts = np.zeros((len(values), len(names)))
    np.add.at(parts.T, folded.atom_sources, (w * (values - base_values)).T)
    base = target.sign * (intercept[target.k] + coef[target.k] @ folded.offsets) + \
        w @ base_values[0]
    return explanations("linear", target, predicted, base, parts, names, X)
