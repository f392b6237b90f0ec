"""Scoring validated rows with the loaded model, and writing the answer as JSON or CSV.

Owns: one result per row (label and probabilities, or value; explanation; warnings)
and the CSV rendering of results.
"""
from __future__ import annotations

import contextlib
import csv
import io
import warnings

import numpy as np

from .explain import explain_rows
from .frames import model_input
from .model import LoadedModel

# Classifiers whose predict() is, by its own code, classes_[argmax(predict_proba(X))]: for
# them one predict_proba call gives both figures. Exact type names of the final step, so a
# subclass that overrides predict() does not qualify.
LABEL_FROM_PROBA = {
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
}

# Single trees, walked as their own predict/predict_proba walk them: on rows the function
# has validated (finite, within float32's range, the right number of columns), the tree's
# checks would only cast them to float32, which is done here instead.
SINGLE_TREES = {
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeRegressor",
}


def _kind(estimator) -> str:
    kind = type(estimator)
    return f"{kind.__module__}.{kind.__qualname__}"


def _final(estimator):
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _label_from_proba(estimator) -> bool:
    return (_kind(_final(estimator)) in LABEL_FROM_PROBA
            and getattr(_final(estimator), "n_outputs_", 1) == 1)


def _single_tree(estimator, X) -> bool:
    """Return whether the estimator is one tree with one output, called on numeric rows with
    its number of columns (its walk itself checks none of these)."""
    return (_kind(estimator) in SINGLE_TREES and getattr(estimator, "n_outputs_", 1) == 1
            and isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2
            and X.shape[1] == estimator.tree_.n_features)


@contextlib.contextmanager
def _validated_input():
    """Call the estimator on input the function has validated itself."""
    import sklearn

    # Every value is already checked finite and within float32's range.
    with sklearn.config_context(assume_finite=True), warnings.catch_warnings():
        # A model fitted on a DataFrame warns on arrays; the manifest fixed the column order.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        yield


def predict_all(estimator, X: np.ndarray, *, classification: bool):
    """Given validated rows, return (predictions, probabilities or None), calling the
    estimator once where its predict() is the argmax of its predict_proba()."""
    if _single_tree(estimator, X):
        # What the tree's predict_proba / predict do once their checks have passed.
        values = estimator.tree_.predict(np.asarray(X, dtype=np.float32))
        if classification:
            proba = values[:, :estimator.n_classes_]
            return estimator.classes_.take(np.argmax(proba, axis=1)), proba
        return values[:, 0], None
    with _validated_input():
        if classification and hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            if _label_from_proba(estimator):
                return estimator.classes_.take(np.argmax(proba, axis=1)), proba
            return estimator.predict(X), proba
        return estimator.predict(X), None


def score(loaded: LoadedModel, X: np.ndarray, row_warnings: list[list[dict]], *,
          explain: bool) -> list[dict]:
    """Given validated rows and their range warnings, return one result dict per row."""
    estimator = loaded.estimator
    classification = loaded.manifest.get("task") == "classification"
    defaults = [f.get("default") for f in loaded.manifest["features"]]
    # The typical case (each feature's default) that a linear model's explanation starts from.
    reference = None if not explain or None in defaults else \
        model_input(np.array([defaults], dtype=X.dtype), loaded.manifest)
    rows = X
    X = model_input(X, loaded.manifest)  # a DataFrame for models fitted on one that need it
    predicted, proba = predict_all(estimator, X, classification=classification)
    values = predicted.tolist()
    results = [{"label": v} for v in values] if classification else \
        [{"value": float(v)} for v in values]
    if proba is not None:
        classes = loaded.class_names
        for row, p in zip(results, proba.tolist()):
            row["probabilities"] = dict(zip(classes, p))
    if explain:
        explanations = [None] * len(results)
        # The explanations walk complete rows: a row missing a value gets none (null) rather
        # than one that follows another path than the model's.
        complete = _complete(rows)
        if not complete.all():
            X, predicted = model_input(rows[complete], loaded.manifest), predicted[complete]
        # A single tree's explanation calls the tree without its checks: no context needed.
        with contextlib.nullcontext() if _single_tree(estimator, X) else _validated_input():
            explained = explain_rows(estimator, X, loaded.feature_names, list(predicted),
                                     reference=reference) if len(predicted) else []
        for i, explanation in zip(np.flatnonzero(complete), explained):
            explanations[i] = explanation
        for row, explanation in zip(results, explanations):
            row["explanation"] = explanation
    for row, warnings_of_row in zip(results, row_warnings):
        row["warnings"] = warnings_of_row
    return results


def _complete(rows: np.ndarray) -> np.ndarray:
    """Given validated rows, return which have every value (an optional one may be missing)."""
    if rows.dtype != object:
        return ~np.isnan(rows).any(axis=1)
    return np.array([not any(v is None or (isinstance(v, float) and np.isnan(v)) for v in row)
                     for row in rows], dtype=bool)


# The CSV answer's columns for each class's figure: a single tree's is the share of the
# training samples in the row's leaf that had the label; any other model's is its own score
# (predict_proba). Neither is how often the answer is right: the model card says that.
LEAF_SHARE_COLUMN = "share_of_training_samples_in_leaf_"
SCORE_COLUMN = "model_score_"
RANGE_COLUMN = "outside_training_range"  # the features whose value is outside training's range


# What a spreadsheet may run as a formula when a cell starts with it (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """Given a cell, return it so that no spreadsheet runs it: text starting with a formula
    character gets a leading single quote (OWASP's rule); numbers are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def leaf_shares(estimator) -> bool:
    """Return whether the estimator's class figures are a single tree's leaf shares."""
    return _kind(_final(estimator)) in SINGLE_TREES


def results_csv(results: list[dict], labels: list[str], *, leaf_share: bool = False) -> str:
    """Given results, return them as CSV: row, prediction, one column per class figure (named
    for what it is: a leaf's training share or the model's score), the out-of-range features."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    figure = LEAF_SHARE_COLUMN if leaf_share else SCORE_COLUMN
    if not any("probabilities" in r for r in results):
        labels = []  # a regressor, or a classifier without predict_proba: no figure to give
    writer.writerow(map(safe_cell, ["row", "prediction", *[f"{figure}{c}" for c in labels],
                                    RANGE_COLUMN]))
    for i, r in enumerate(results):
        probs = [r["probabilities"].get(str(c)) for c in labels] if "probabilities" in r else []
        writer.writerow(map(safe_cell, [i, r.get("label", r.get("value")), *probs,
                                        ";".join(w["field"] for w in r["warnings"])]))
    return out.getvalue()
