"""Turning a request body into validated model input.

Owns: the accepted body formats (one row, many rows, the MLflow scoring formats, CSV),
checking every value against the manifest's feature schema, and building the matrix
the estimator is called with. Every problem becomes an InvalidInput naming row and field.
"""
from __future__ import annotations

import csv
import io
import json
import math
import operator
from itertools import chain

import numpy as np

from .errors import MAX_DETAILS, BadRequest, InvalidInput, PayloadTooLarge, detail

JSON_FORMATS = ("features", "instances", "inputs", "dataframe_records", "dataframe_split")
NUMERIC_TYPES = ("number", "integer")
# The largest float32: scikit-learn's trees cast inputs to float32 and fail beyond it.
MAX_MAGNITUDE = 3.4028234663852886e38


def _format_error(message: str) -> BadRequest:
    return BadRequest(message + f"; send one of {', '.join(JSON_FORMATS)} (or a text/csv body)",
                      code="invalid_format")


def _type_name(value) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", str: "string", list: "array", dict: "object",
            int: "number", float: "number"}.get(type(value), type(value).__name__)


def parse_json(body: bytes) -> object:
    """Given a request body, return its JSON value; BadRequest(invalid_json) if it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno})", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply", code="invalid_json") from None
    except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
        raise BadRequest("the body has a number with too many digits", code="invalid_json") \
            from None


def rows_from_json(doc: object, names: list[str]) -> tuple[list[dict], str]:
    """Given a parsed JSON body, return its rows as {feature: value} dicts and the format used."""
    if not isinstance(doc, dict):
        raise _format_error(f"the body must be a JSON object, received {_type_name(doc)}")
    keys = [k for k in JSON_FORMATS if k in doc]
    if len(keys) != 1:
        raise _format_error("the body must have exactly one format key"
                            if keys else "the body has no known format key")
    extra = set(doc) - {keys[0]}
    if keys[0] == "dataframe_split":
        extra.discard("params")
    if extra:
        raise _format_error(f"unexpected key '{sorted(extra)[0][:40]}' beside '{keys[0]}'")
    fmt = keys[0]
    value = doc[fmt]
    if fmt == "features":
        if not isinstance(value, dict):
            raise _format_error(f"'features' must be an object of name: value, "
                                f"received {_type_name(value)}")
        return [value], fmt
    if fmt == "dataframe_split":
        return _rows_from_split(value), fmt
    if not isinstance(value, list):
        raise _format_error(f"'{fmt}' must be an array of rows, received {_type_name(value)}")
    if set(map(type, value)) == {dict}:  # the usual case, checked in one pass in C
        return value, fmt
    rows = []
    for i, item in enumerate(value):
        if isinstance(item, list) and fmt != "dataframe_records":
            if len(item) != len(names):
                raise BadRequest(f"row {i} has {len(item)} values; expected {len(names)}, "
                                 "one per feature in the model's order", code="invalid_format")
            rows.append(dict(zip(names, item)))
        elif isinstance(item, dict):
            rows.append(item)
        else:
            raise _format_error(f"row {i} of '{fmt}' must be an object, "
                                f"received {_type_name(item)}")
    return rows, fmt


def _rows_from_split(value: object) -> list[dict]:
    if not (isinstance(value, dict) and isinstance(value.get("columns"), list)
            and isinstance(value.get("data"), list)):
        raise _format_error("'dataframe_split' must be an object with 'columns' and 'data' arrays")
    columns = value["columns"]
    if not all(isinstance(c, str) for c in columns):
        raise _format_error("'dataframe_split.columns' must be an array of strings")
    rows = []
    for i, item in enumerate(value["data"]):
        if not isinstance(item, list) or len(item) != len(columns):
            raise BadRequest(f"row {i} of 'dataframe_split.data' must be an array of "
                             f"{len(columns)} values", code="invalid_format")
        rows.append(dict(zip(columns, item)))
    return rows


def rows_from_csv(body: bytes) -> list[dict]:
    """Given a text/csv body with a header row, return its rows as {column: text} dicts."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the CSV body is not UTF-8 text", code="invalid_csv") from None
    try:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header:
            raise BadRequest("the CSV body has no header row", code="invalid_csv")
        header = [h.strip() for h in header]
        rows = []
        for line in reader:
            if not any(cell.strip() for cell in line):
                continue
            if len(line) != len(header):
                raise BadRequest(f"CSV row {len(rows)} has {len(line)} cells; the header has "
                                 f"{len(header)}", code="invalid_csv")
            rows.append({h: cell for h, cell in zip(header, line) if cell.strip() != ""})
        return rows
    except csv.Error as exc:
        raise BadRequest(f"the CSV body cannot be read ({exc})", code="invalid_csv") from None


def check_row_count(rows: list, max_rows: int) -> None:
    """Raise if a request has no rows or more than max_rows."""
    if not rows:
        raise BadRequest("the request has no rows", code="no_rows")
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"the request has {len(rows)} rows; at most {max_rows} are "
                              "accepted per request, split it", code="too_many_rows")


def _number(value, *, text: bool) -> float | None:
    if text and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_value(feature: dict, value, *, text: bool, row: int | None):
    """Given one feature's schema and a value, return (clean value, problem or None)."""
    name, kind = feature["name"], feature["type"]
    if kind == "categorical":
        categories = feature["categories"]
        if text:
            match = [c for c in categories if str(c) == str(value).strip()]
        else:
            match = [c for c in categories if c == value and type(c) is type(value)]
        if match:
            return match[0], None
        shown = ", ".join(map(str, categories[:20]))
        return None, detail(name, "unseen_category",
                            f"expected one of: {shown}; received a value not seen in training",
                            row=row, expected=categories[:20])
    number = _number(value, text=text)
    if number is None:
        return None, detail(name, "invalid_type",
                            f"expected a number, received {'text' if text else _type_name(value)}",
                            row=row, expected=kind)
    if not math.isfinite(number):
        return None, detail(name, "non_finite", "expected a finite number, received NaN or "
                            "infinity", row=row, expected=kind)
    if abs(number) > MAX_MAGNITUDE:
        return None, detail(name, "too_large", f"expected a number between {-MAX_MAGNITUDE:g} "
                            f"and {MAX_MAGNITUDE:g}", row=row, expected=kind)
    if kind == "integer" and not number.is_integer():
        return None, detail(name, "invalid_type", "expected a whole number, received a fraction",
                            row=row, expected=kind)
    return number, None


def _range_warning(feature: dict, number: float) -> dict | None:
    low, high = feature.get("min"), feature.get("max")
    if low is None or high is None or low <= number <= high:
        return None
    side = "below" if number < low else "above"
    return {"field": feature["name"], "code": "out_of_range",
            "message": f"{side} the range seen in training ({low:g} to {high:g}); "
                       "the prediction is less reliable", "min": low, "max": high}


_schema_cache: dict[int, tuple] = {}


def _numeric_schema(features: list[dict]) -> tuple:
    """Return (names, integer columns, lows, highs) of a numeric schema; computed once per
    manifest (the served manifest's feature list is one object for the process)."""
    hit = _schema_cache.get(id(features))
    if hit is None or hit[0] is not features:
        names = [f["name"] for f in features]
        ranged = [f.get("min") is not None and f.get("max") is not None for f in features]
        hit = (features, names,
               [j for j, f in enumerate(features) if f["type"] == "integer"],
               np.array([f["min"] if r else -np.inf for f, r in zip(features, ranged)]),
               np.array([f["max"] if r else np.inf for f, r in zip(features, ranged)]))
        _schema_cache.clear()
        _schema_cache[id(features)] = hit
    return hit[1:]


def _validate_numbers(rows: list[dict], features: list[dict]):
    """Given JSON rows and an all-numeric schema, return (matrix, warnings) when every row
    holds exactly the features with valid plain numbers; None otherwise, so that the
    value-by-value path finds and names each problem with its usual words."""
    names, whole, lows, highs = _numeric_schema(features)
    # Loops over every row and value run in C (map, itemgetter). A row holds exactly the
    # features when it has as many keys and each feature is one of them (names are unique).
    if set(map(len, rows)) != {len(names)}:
        return None
    try:
        cells = list(map(operator.itemgetter(*names), rows)) if len(names) > 1 else \
            [[row[names[0]]] for row in rows]
    except KeyError:
        return None
    if not set(map(type, chain.from_iterable(cells))) <= {float, int}:
        return None  # bool, str, None, nested values...
    try:  # every value is an int or a float here: fromiter converts them as np.array would
        X = np.fromiter(chain.from_iterable(cells), dtype=float,
                        count=len(rows) * len(names)).reshape(len(rows), len(names))
    except OverflowError:
        return None
    if not (np.isfinite(X).all() and (np.abs(X) <= MAX_MAGNITUDE).all()):
        return None
    if whole and not (X[:, whole] == np.floor(X[:, whole])).all():
        return None
    outside = (X < lows) | (X > highs)
    warnings: list[list[dict]] = [[] for _ in rows]
    for i, j in zip(*np.nonzero(outside)):  # row by row, in feature order
        warnings[i].append(_range_warning(features[j], float(X[i, j])))
    return X, warnings


def validate(rows: list[dict], features: list[dict], *, text: bool = False):
    """Given raw rows and the feature schema, return (matrix, per-row warnings).

    Every missing, unknown or invalid value across all rows is collected into one
    InvalidInput (up to MAX_DETAILS), so a caller can fix everything in one go.
    """
    if not text and all(f["type"] in NUMERIC_TYPES for f in features):
        fast = _validate_numbers(rows, features)
        if fast is not None:
            return fast
    known = {f["name"] for f in features}
    single = len(rows) == 1
    problems: list[dict] = []
    matrix, warnings = [], []
    for i, row in enumerate(rows):
        at = None if single else i
        clean, row_warnings = [], []
        for key in row:
            if key not in known:
                problems.append(detail(str(key), "unknown_feature",
                                       "this feature is not one the model takes", row=at))
        for feature in features:
            name = feature["name"]
            if name not in row or row[name] is None:
                problems.append(detail(name, "missing_feature", f"expected a "
                                       f"{feature['type']} value, received nothing", row=at))
                continue
            value, problem = _check_value(feature, row[name], text=text, row=at)
            if problem:
                problems.append(problem)
            elif feature["type"] in NUMERIC_TYPES:
                warning = _range_warning(feature, value)
                if warning:
                    row_warnings.append(warning)
            clean.append(value)
        if len(problems) >= MAX_DETAILS:
            break
        matrix.append(clean)
        warnings.append(row_warnings)
    if problems:
        raise InvalidInput(problems)
    numeric = all(f["type"] in NUMERIC_TYPES for f in features)
    return np.array(matrix, dtype=float if numeric else object), warnings


def read_rows(body: bytes, media_type: str, features: list[dict], max_rows: int):
    """Given a body and its media type, return (matrix, warnings, format) or raise an ApiError."""
    names = [f["name"] for f in features]
    if media_type == "text/csv":
        rows, fmt, text = rows_from_csv(body), "csv", True
    else:
        rows, fmt = rows_from_json(parse_json(body), names)
        text = False
    check_row_count(rows, max_rows)
    matrix, warnings = validate(rows, features, text=text)
    return matrix, warnings, fmt

