"""Scoring validated rows with the loaded model, and writing the answer as JSON or CSV.

Owns: one result per row (label and probabilities, or value; explanation; warnings)
and the CSV rendering of results.
"""
from __future__ import annotations

import csv
import io
import warnings

import numpy as np

from .explain import explain_rows
from .frames import model_input
from .model import LoadedModel


def score(loaded: LoadedModel, X: np.ndarray, row_warnings: list[list[dict]], *,
          explain: bool) -> list[dict]:
    """Given validated rows and their range warnings, return one result dict per row."""
    estimator, names = loaded.estimator, [f["name"] for f in loaded.manifest["features"]]
    classification = loaded.manifest.get("task") == "classification"
    X = model_input(X, loaded.manifest)  # a DataFrame for models fitted on one that need it
    with warnings.catch_warnings():
        # A model fitted on a DataFrame warns on arrays; the manifest fixed the column order.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        predicted = estimator.predict(X)
        proba = estimator.predict_proba(X) if classification and hasattr(
            estimator, "predict_proba") else None
    explanations = explain_rows(estimator, X, names, list(predicted)) if explain \
        else [None] * len(X)
    results = []
    for i, value in enumerate(predicted):
        row = {"label": value} if classification else {"value": float(value)}
        if proba is not None:
            row["probabilities"] = {str(c): float(p) for c, p in zip(estimator.classes_, proba[i])}
        if explain:
            row["explanation"] = explanations[i]
        row["warnings"] = row_warnings[i]
        results.append(row)
    return results


def results_csv(results: list[dict], labels: list[str]) -> str:
    """Given results, return them as CSV: row, prediction, one column per class probability."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "prediction", *[f"probability_{c}" for c in labels], "warnings"])
    for i, r in enumerate(results):
        probs = [r["probabilities"].get(str(c)) for c in labels] if "probabilities" in r else []
        writer.writerow([i, r.get("label", r.get("value")), *probs,
                         ";".join(w["field"] for w in r["warnings"])])
    return out.getvalue()
