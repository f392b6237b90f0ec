"""Package your own fitted scikit-learn model so the unchanged function and site serve it.

Given a pickled estimator (a Pipeline included) and a CSV of reference data, with the name
of its target column if it has one, writes a model directory: the pickle and a complete
manifest (features with types, ranges and medians, examples, and metrics when the target
is given). Serve it with MODEL_DIR=<that directory>.

    python scripts/package_model.py my_model.pkl reference.csv --target price --out my_model/
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import modelcard
from predict.settings import SettingsError, from_env
from predict.unpickle import ForbiddenGlobal, restricted_loads


CARD_KEYS = {"title", "description", "intended_use", "limitations", "label_descriptions",
             "features"}
FEATURE_WORDS = {"label", "description", "unit"}


class PackagingError(Exception):
    """The model or data cannot be served; the message says what to do."""


def read_card(path: Path | None, names: list[str]) -> dict:
    """Return the words for people in a --card JSON file (checked), or {} without one."""
    if path is None:
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackagingError(f"cannot read {path} as JSON ({type(exc).__name__})") from None
    if not isinstance(card, dict) or set(card) - CARD_KEYS:
        raise PackagingError(f"{path} must be an object with only these keys: "
                             + ", ".join(sorted(CARD_KEYS)))
    features = card.get("features", {})
    unknown = set(features) - set(names)
    if unknown:
        raise PackagingError(f"{path} describes features the model does not take: "
                             + ", ".join(sorted(unknown)))
    for name, words in features.items():
        if not isinstance(words, dict) or set(words) - FEATURE_WORDS:
            raise PackagingError(f"{path}: feature '{name}' may only have "
                                 + ", ".join(sorted(FEATURE_WORDS)))
    return card


def load_estimator(path: Path):
    """Return the unpickled estimator, checked to be a fitted classifier or regressor."""
    try:
        trusted = from_env().trusted_globals
    except SettingsError as exc:
        raise PackagingError(str(exc)) from None
    try:
        estimator = restricted_loads(path.read_bytes(), extra=trusted)
    except OSError as exc:
        raise PackagingError(f"cannot read {path}: {exc.strerror}") from None
    except ForbiddenGlobal as exc:
        raise PackagingError(f"{path}: {exc}; the function would refuse it too. If that global "
                             "is your own code and you trust it, list it in TRUSTED_GLOBALS "
                             "(e.g. TRUSTED_GLOBALS=mypkg.features.Scaler)") from None
    except Exception as exc:  # unpickling can fail in many ways; all mean "not a model file"
        raise PackagingError(f"{path} is not a readable pickle ({type(exc).__name__}); save the "
                             "fitted estimator with pickle.dump(model, f)") from None
    if not callable(getattr(estimator, "predict", None)):
        raise PackagingError(f"{type(estimator).__name__} has no predict(); package a fitted "
                             "classifier, regressor or a Pipeline ending in one")
    if not (is_classifier(estimator) or is_regressor(estimator)):
        raise PackagingError(f"{type(estimator).__name__} is neither a classifier nor a "
                             "regressor; only those can be served")
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise PackagingError(f"{type(estimator).__name__} is not fitted; call fit() before "
                             "pickling it") from None
    return estimator


def read_reference(path: Path, target: str | None) -> tuple[list[str], list[list[str]], list[str] | None]:
    """Return the CSV's feature columns, its feature rows (as text) and the target column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PackagingError(f"cannot read {path} as CSV ({type(exc).__name__}); give a UTF-8 "
                             "CSV file with a header row") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise PackagingError(f"{path} needs a header row and at least one data row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise PackagingError(f"{path} line {i} has {len(row)} cells; the header has {len(header)}")
        if any(cell.strip() == "" for cell in row):
            raise PackagingError(f"{path} line {i} has an empty cell; reference data must be complete")
    if target is None:
        return header, body, None
    if target not in header:
        raise PackagingError(f"the target column '{target}' is not in {path}; its columns are: "
                             + ", ".join(header))
    k = header.index(target)
    return ([h for j, h in enumerate(header) if j != k],
            [[c for j, c in enumerate(r) if j != k] for r in body], [r[k] for r in body])


def feature_order(estimator, columns: list[str]) -> list[str]:
    """Return the model's feature names in its order, checked against the CSV's columns."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        names = [str(n) for n in names]
        missing, extra = set(names) - set(columns), set(columns) - set(names)
        if missing or extra:
            parts = [f"missing from the CSV: {', '.join(sorted(missing))}" if missing else "",
                     f"not known to the model: {', '.join(sorted(extra))}" if extra else ""]
            raise PackagingError("the CSV's columns do not match the model's features ("
                                 + "; ".join(p for p in parts if p) + ")")
        return names
    expected = getattr(estimator, "n_features_in_", len(columns))
    if expected != len(columns):
        raise PackagingError(f"the model takes {expected} features; the CSV has {len(columns)} "
                             "columns besides the target")
    return columns


def build_matrix(columns, rows, names) -> tuple[np.ndarray, list[str]]:
    """Return the reference rows as the matrix the function will build, and each feature's type."""
    index = [columns.index(n) for n in names]
    table = [[row[j].strip() for j in index] for row in rows]
    types = [modelcard.infer_type([r[k] for r in table]) for k in range(len(names))]
    numeric = all(t != "categorical" for t in types)
    X = np.array([[v if t == "categorical" else float(v) for v, t in zip(r, types)] for r in table],
                 dtype=float if numeric else object)
    return X, types


def target_values(estimator, y_text: list[str]) -> np.ndarray:
    """Return the target column typed like the model's own labels (or as numbers)."""
    classes = getattr(estimator, "classes_", None)
    try:
        if classes is None:
            return np.array(y_text, dtype=float)
        return np.array(y_text).astype(classes.dtype) if classes.dtype.kind in "iufb" \
            else np.array(y_text, dtype=object)
    except ValueError:
        raise PackagingError("the target column's values do not match the model's "
                             f"({'numbers' if classes is None else 'labels ' + str(list(classes))})") from None


def package(model_path: Path, data_path: Path, out_dir: Path, *, target: str | None = None,
            name: str | None = None, version: str = "1.0.0", description: str = "",
            positive: str | None = None, card_path: Path | None = None) -> dict:
    """Package a pickled estimator and its reference CSV into out_dir; return the manifest."""
    estimator = load_estimator(model_path)
    columns, rows, y_text = read_reference(data_path, target)
    names = feature_order(estimator, columns)
    X, types = build_matrix(columns, rows, names)
    card = read_card(card_path, names)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            estimator.predict(X[:5])
        except Exception as exc:  # any failure here means the function could not serve it
            raise PackagingError("the model cannot predict the reference rows as the function "
                                 f"sends them (a NumPy array in feature order): {exc}. A model "
                                 "fitted on a DataFrame must select its columns by position") from None
        return _manifest(estimator, X, types, names, y_text, out_dir, name=name or model_path.stem,
                         version=version, description=description, positive=positive,
                         data_name=data_path.name, card=card)


def _manifest(estimator, X, types, names, y_text, out_dir, *, name, version, description,
              positive, data_name, card) -> dict:
    classification = is_classifier(estimator)
    y = target_values(estimator, y_text) if y_text is not None else None
    labels = [str(c) for c in estimator.classes_] if classification else []
    if classification and positive is None:
        positive = labels[-1]
    if classification and positive not in labels:
        raise PackagingError(f"--positive must be one of the model's labels: {', '.join(labels)}")
    positive_value = estimator.classes_[labels.index(positive)] if classification else None
    manifest = {
        "name": name, "version": version, "title": name,
        "description": description or f"A scikit-learn {type(estimator).__name__} packaged "
                                      "with package_model.py.",
        "limitations": ["Packaged from a user's model: check its model card before relying on it."],
        "task": "classification" if classification else "regression",
        "estimator": type(estimator).__name__,
        "labels": labels,
        "features": modelcard.feature_schema(
            X, names, types, importances=modelcard.importances_of(estimator, X, y, names),
            meta=card.pop("features", None)),
        "examples": modelcard.examples_of(estimator, X, y, names, types, classification),
        "training_data": {"reference": data_name, "rows": len(X)},
        **card,
    }
    if classification:
        manifest["positive_label"] = positive
    if y is not None:
        scores = (modelcard.classification_metrics(estimator, X, y, positive_value)
                  if classification else modelcard.regression_metrics(estimator, X, y))
        manifest["metrics"] = {"data": f"the reference data {data_name}; if the model was "
                                       "trained on it, these scores are optimistic", **scores}
    return modelcard.write_model_dir(out_dir, estimator, manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="the fitted estimator, pickled")
    parser.add_argument("data", type=Path, help="reference data: CSV with a header row")
    parser.add_argument("--target", help="the CSV's target column, if it has one (for metrics)")
    parser.add_argument("--out", type=Path, required=True, help="the model directory to write")
    parser.add_argument("--name", help="the model's name (default: the pickle's file name)")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--description", default="")
    parser.add_argument("--positive", help="the positive label of a binary classifier")
    parser.add_argument("--card", type=Path, help="JSON with words for people: title, "
                        "description, intended_use, limitations, label_descriptions, and "
                        "features: {name: {label, description, unit}}")
    args = parser.parse_args(argv)
    try:
        manifest = package(args.model, args.data, args.out, target=args.target, name=args.name,
                           version=args.version, description=args.description,
                           positive=args.positive, card_path=args.card)
    except PackagingError as exc:
        print(f"package_model: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/ ({manifest['task']}, {len(manifest['features'])} features); "
          f"serve it with: MODEL_DIR={args.out} bash scripts/run.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
