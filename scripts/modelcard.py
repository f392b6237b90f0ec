"""Writing a model directory: the pickle plus the manifest that describes it (its model card).

Owns: the feature schema (types, ranges, percentiles, importance), held-out metrics,
examples, versions and the artifact's checksum. Used by train.py and package_model.py,
so every served model, ours or a user's, is described the same way.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netlify" / "functions"))
from predict.manifest import Manifest  # noqa: E402  the contract, declared once, read by the function
from predict.web import jsonable  # noqa: E402  numpy values as plain JSON ones, in one place

PICKLE_FILE = "model.pkl"
MANIFEST_FILE = "manifest.json"
# The most characters a text feature takes, unless a reference text is longer.
TEXT_MAX_LENGTH = 10_000
PERCENTILES = (5, 25, 75, 95)
DIGITS = 6


def _r(x: float) -> float:
    return round(float(x), DIGITS)


def infer_type(values: list) -> str:
    """Given one column's values (empty ones left out), return 'number', 'integer' or
    'categorical'."""
    try:
        numbers = [float(v) for v in values if v != ""]
    except (TypeError, ValueError):
        return "categorical"
    return "integer" if all(n.is_integer() for n in numbers) else "number"


def feature_schema(X: np.ndarray, names: list[str], types: list[str], *,
                   importances: list[float] | None, meta: dict | None = None) -> list[dict]:
    """Given reference rows, return the manifest's feature list (schema, ranges, importance)."""
    meta = meta or {}
    out = []
    for j, (name, kind) in enumerate(zip(names, types)):
        feature = {"name": name, "label": name, **meta.get(name, {}), "type": kind}
        column = X[:, j]
        if kind == "text":
            feature["max_length"] = max(TEXT_MAX_LENGTH, *(len(v) for v in column))
            feature["default"] = ""
        elif kind == "categorical":
            column = column[column != None]  # noqa: E711  (None: a missing value)
            values, counts = np.unique(column.astype(str), return_counts=True)
            originals = {str(v): v for v in column}
            feature["categories"] = [_plain(originals[v]) for v in values]
            feature["default"] = _plain(originals[values[np.argmax(counts)]])
        else:
            col = column.astype(float)
            col = col[~np.isnan(col)]  # missing values have no place in the ranges
            feature.update({"min": float(col.min()), "max": float(col.max()),
                            "median": float(np.median(col)),
                            "percentiles": {f"p{p}": float(np.percentile(col, p))
                                            for p in PERCENTILES}})
            median = feature["median"]
            feature["default"] = int(round(median)) if kind == "integer" else median
        feature["importance"] = _r(importances[j]) if importances is not None else None
        out.append(feature)
    return out


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def importances_of(estimator, X, y, names) -> list[float] | None:
    """Return each input feature's importance (sums to 1), or None when it cannot be told."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    values = None
    if hasattr(final, "feature_importances_") and len(final.feature_importances_) == len(names):
        values = np.asarray(final.feature_importances_, dtype=float)
    elif y is not None:
        from sklearn.inspection import permutation_importance
        values = permutation_importance(estimator, X, y, n_repeats=5, random_state=0)\
            .importances_mean.clip(min=0)
    if values is None or values.sum() <= 0:
        return None
    return list(values / values.sum())


def classification_metrics(estimator, X, y, positive) -> dict:
    """Given held-out rows and labels, return accuracy, per-class scores, confusion, ROC."""
    labels = [_plain(c) for c in estimator.classes_]
    pred = estimator.predict(X)
    p, r, f, s = metrics.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out = {"rows": int(len(y)), "accuracy": _r(metrics.accuracy_score(y, pred)),
           "balanced_accuracy": _r(metrics.balanced_accuracy_score(y, pred)),
           "per_class": {str(c): {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]),
                                  "support": int(s[i])} for i, c in enumerate(labels)},
           "confusion_matrix": {"labels": labels, "rows_are": "true label",
                                "columns_are": "predicted label",
                                "matrix": metrics.confusion_matrix(y, pred, labels=labels)
                                .tolist()}}
    if hasattr(estimator, "predict_proba") and len(set(y)) > 1:
        proba = estimator.predict_proba(X)
        if len(labels) == 2:
            k = labels.index(positive)
            truth = np.asarray(y) == positive
            out["roc_auc"] = _r(metrics.roc_auc_score(truth, proba[:, k]))
            fpr, tpr, _ = metrics.roc_curve(truth, proba[:, k])
            out["roc_curve"] = {"positive": _plain(positive), "fpr": [_r(v) for v in fpr],
                                "tpr": [_r(v) for v in tpr]}
        elif len(set(y)) == len(labels):
            out["roc_auc"] = _r(metrics.roc_auc_score(y, proba, multi_class="ovr",
                                                      labels=labels))
    return out


def regression_metrics(estimator, X, y) -> dict:
    """Given held-out rows and targets, return R², MAE and RMSE."""
    pred = estimator.predict(X)
    y = np.asarray(y, dtype=float)
    return {"rows": int(len(y)), "r2": _r(metrics.r2_score(y, pred)),
            "mae": _r(metrics.mean_absolute_error(y, pred)),
            "rmse": _r(np.sqrt(metrics.mean_squared_error(y, pred)))}


def examples_of(estimator, X, y, names, types, classification: bool, *,
                model_input=None) -> list[dict]:
    """Return typical reference rows: per class, the correctly predicted one nearest its median.

    `model_input` is X as the estimator takes it (a DataFrame for some), when it is not X."""
    numeric = [j for j, t in enumerate(types) if t in ("number", "integer")]

    def nearest(mask):
        rows = np.flatnonzero(mask)
        if not len(rows) or not numeric:
            return rows[0] if len(rows) else None
        block = X[np.ix_(rows, numeric)].astype(float)
        with warnings.catch_warnings():  # a column all missing in these rows: no scale
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nan_to_num(np.nanstd(block, axis=0))
            scale[scale == 0] = 1
            z = ((block - np.nanmedian(block, axis=0)) / scale) ** 2
        dist = np.where(np.isnan(z), np.inf, z).sum(axis=1)  # complete rows first
        return rows[int(np.argmin(dist))]

    def row_dict(i):
        return {n: _plain(X[i, j]) if types[j] in ("categorical", "text") else
                None if np.isnan(float(X[i, j])) else
                (int(X[i, j]) if types[j] == "integer" else float(X[i, j]))
                for j, n in enumerate(names)}

    if not classification or y is None:
        i = nearest(np.ones(len(X), dtype=bool))
        return [{"name": "Typical case", "features": row_dict(i)}]
    pred = estimator.predict(X if model_input is None else model_input)
    out = []
    for c in estimator.classes_:
        i = nearest((np.asarray(y) == c) & (pred == c))
        if i is not None:
            out.append({"name": f"Typical {c} case", "label": _plain(c), "features": row_dict(i)})
    return out


def versions() -> dict:
    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__}


def stable_pickle(estimator) -> bytes:
    """Return the estimator's pickle, the same bytes in every process that has the same versions.

    Pickle memoises by object identity, so whether two equal strings happen to be one object
    (interning differs between processes) changes the bytes. Without the memo (`fast`) the
    bytes depend on values only; a self-referencing object needs the memo, and gets it.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True
    try:
        pickler.dump(estimator)
    except (ValueError, RecursionError):
        return pickle.dumps(estimator, protocol=5)
    return buffer.getvalue()


def write_model_dir(out_dir: Path, estimator, manifest: dict, *,
                    pickle_file: str = PICKLE_FILE) -> Manifest:
    """Pickle the estimator into out_dir, add its file, size and SHA-256 to the manifest,
    write manifest.json beside it, and return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = stable_pickle(estimator)
    manifest: Manifest = {**manifest, "versions": versions(),
                "artifact": {"file": pickle_file, "bytes": len(data),
                             "sha256": hashlib.sha256(data).hexdigest(), "format": "pickle"}}
    manifest = jsonable(manifest)
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"  # fails before any write
    (out_dir / pickle_file).write_bytes(data)
    (out_dir / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return manifest
