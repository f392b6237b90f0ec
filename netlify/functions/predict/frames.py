"""What the estimator is called with: a NumPy array, a pandas DataFrame for models that need
one, or one column of text for a text pipeline fitted on a list of strings.

Owns: the manifest's `input` entry (`container`, and for a DataFrame its `columns` and
`dtypes`), and building that input from validated rows. pandas is imported here only, and
only when the manifest says the model needs a DataFrame: other models never load it.
"""
from __future__ import annotations

import json
import logging
from typing import TypedDict

import numpy as np

from .errors import ModelUnavailable

ARRAY = "array"
DATAFRAME = "dataframe"
COLUMN = "column"  # a 1-D array of the one feature's values (e.g. a vectorizer's documents)
# The dtype of each feature type in the DataFrame: what read_csv would give a fitted model
# (an integer column with missing values reads as float64).
DTYPES = {"number": "float64", "integer": "int64", "categorical": "object", "text": "object"}

log = logging.getLogger("predict")


class InputSpec(TypedDict, total=False):
    """The manifest's `input`: what packaging found the model takes, and what the function builds."""

    container: str  # ARRAY, DATAFRAME or COLUMN
    reason: str  # why, in words (e.g. "fitted on a pandas DataFrame; ...")
    columns: list[str]  # DATAFRAME only: the column order, the model's feature_names_in_
    dtypes: dict[str, str]  # DATAFRAME only: each column's dtype, one of DTYPES' values


def input_spec(features: list[dict], container: str, reason: str) -> InputSpec:
    """Given the feature schema and a container, return the manifest's `input` entry."""
    spec = {"container": container, "reason": reason}
    if container == DATAFRAME:
        spec["columns"] = [f["name"] for f in features]
        spec["dtypes"] = {f["name"]: "float64" if f["type"] == "integer" and f.get("optional")
                          else DTYPES[f["type"]] for f in features}
    return spec


def needs_dataframe(manifest: dict) -> bool:
    """Return whether the manifest says the model is called with a pandas DataFrame."""
    return (manifest.get("input") or {}).get("container") == DATAFRAME


def check_requirements(manifest: dict) -> None:
    """Raise ModelUnavailable if the model takes a DataFrame and pandas does not import here."""
    if needs_dataframe(manifest):
        _pandas()


def _pandas():
    try:
        import pandas  # heavy, and absent from bundles of models that take arrays
    except ImportError:
        reason = ("the model takes a pandas DataFrame (manifest input.container) but pandas is "
                  "not installed here; install requirements-pandas.txt")
        log.error(json.dumps({"event": "model_unavailable", "reason": reason}))
        raise ModelUnavailable("the model is not available: " + reason) from None
    return pandas


def model_input(X: np.ndarray, manifest: dict):
    """Given validated rows in feature order, return what the estimator is called with."""
    if (manifest.get("input") or {}).get("container") == COLUMN:
        return X[:, 0]
    if not needs_dataframe(manifest):
        return X
    pd = _pandas()
    spec = manifest["input"]
    columns = spec["columns"]
    return pd.DataFrame({name: pd.Series(X[:, j], dtype=spec["dtypes"][name])
                         for j, name in enumerate(columns)}, columns=columns)
