"""The one log line per invocation, in CloudWatch's embedded metric format (EMF).

Owns: what an invocation tells its owner without a value from the request's body. Counts
(requests, rows, answers per label, cold starts, 5xx answers, out-of-range warnings per
feature) are EMF metrics, which CloudWatch turns into metrics with no extra call; and, per
numeric feature, how many inputs fell in each band of the training data's quantiles (only
the band, never the value), which scripts/drift.py compares with training. On Lambda the
line is written to stdout as it is: CloudWatch reads EMF only from a log event that is the
JSON object itself, and Lambda's text log format would put a prefix before it.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter

import numpy as np

NAMESPACE = "ServedModel"  # the CloudWatch namespace of the metrics (deploy/template.yaml reads it)
# The bands of a numeric feature's training values, between the manifest's min, 5th, 25th,
# 50th, 75th, 95th percentiles and max; an input falls in one of them.
BANDS = ("below min", "min-p5", "p5-p25", "p25-median", "median-p75", "p75-p95", "p95-max",
         "above max")
MAX_METRICS = 100  # EMF's most metrics in one directive
FUNCTION = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")  # the metrics' one dimension

invocation_log = logging.getLogger("predict.invocation")


def band_edges(feature: dict) -> list[float] | None:
    """Return a numeric feature's training min, p5, p25, median, p75, p95, max; None if unknown."""
    p = feature.get("percentiles") or {}
    edges = [feature.get("min"), p.get("p5"), p.get("p25"), feature.get("median"),
             p.get("p75"), p.get("p95"), feature.get("max")]
    if feature.get("type") not in ("number", "integer") or any(e is None for e in edges):
        return None
    return [float(e) for e in edges]


def input_bands(X: np.ndarray, features: list[dict]) -> dict[str, list[int]]:
    """Given validated rows (columns in the manifest's order), return per numeric feature the
    number of values in each of BANDS (missing values are not counted)."""
    out = {}
    for j, feature in enumerate(features):
        edges = band_edges(feature)
        if edges is None:
            continue
        try:
            column = np.asarray(X[:, j], dtype=float)
        except (TypeError, ValueError):  # an optional feature's None in an object column
            column = np.array([np.nan if v is None else v for v in X[:, j]], dtype=float)
        column = column[~np.isnan(column)]
        band = np.searchsorted(edges[:-1], column, side="right")
        band[column > edges[-1]] = len(BANDS) - 1
        out[feature["name"]] = np.bincount(band, minlength=len(BANDS)).tolist()
    return out


def invocation_line(fields: dict, *, status: int, cold: bool, rows: int,
                    scored: tuple | None) -> dict:
    """Given the invocation's plain fields and, for a prediction, (manifest, X, results),
    return the log line: the fields, the EMF metrics, and the model and inputs' bands."""
    counts = {"Requests": 1, "Rows": rows, "ColdStarts": int(bool(cold)),
              "ServerErrors": int(status >= 500)}
    line = dict(fields)
    if scored is not None:
        manifest, X, results = scored
        labels = Counter(str(r["label"]) for r in results if "label" in r)
        counts.update((f"Answers {label}"[:250], n) for label, n in labels.items())
        warned = Counter(w["field"] for r in results for w in r.get("warnings", ())
                         if w.get("code") == "out_of_range")
        counts.update((f"OutOfRange {name}"[:250], n) for name, n in warned.items())
        line["model"] = {"name": manifest.get("name"), "version": manifest.get("version")}
        line["inputs"] = input_bands(X, manifest["features"])
    names = list(counts)[:MAX_METRICS]
    line.update(counts)
    line["Function"] = FUNCTION
    line["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
        {"Namespace": NAMESPACE, "Dimensions": [["Function"]],
         "Metrics": [{"Name": n, "Unit": "Count"} for n in names]}]}
    return line


def write_bare_to_stdout() -> None:
    """Send the invocation lines to stdout as they are (once), not through the root logger."""
    if not any(getattr(h, "bare", False) for h in invocation_log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.bare = True
        handler.setFormatter(logging.Formatter("%(message)s"))
        invocation_log.addHandler(handler)
        invocation_log.propagate = False
