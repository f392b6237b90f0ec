"""Turning a request body into validated model input.

Owns: the accepted body formats (one row, many rows as objects or as lists, the MLflow
scoring formats with their `params`, CSV with "," or ";"), checking every value against the
manifest's feature schema (numbers, categories, text; missing values where a feature is
optional), and building the matrix the estimator is called with. Every problem becomes an
InvalidInput naming row and field.
"""
from __future__ import annotations

import csv
import io
import json
import math
import operator
import re
from dataclasses import dataclass
from itertools import chain

import numpy as np

from .errors import MAX_DETAILS, BadRequest, InvalidInput, PayloadTooLarge, detail

JSON_FORMATS = ("features", "instances", "inputs", "dataframe_records", "dataframe_split")
NUMERIC_TYPES = ("number", "integer")
# The largest float32: scikit-learn's trees cast inputs to float32 and fail beyond it.
MAX_MAGNITUDE = 3.4028234663852886e38
# The largest whole number a float64 holds exactly; an integer feature's values stay within it,
# so a DataFrame model's int64 column always holds them.
MAX_WHOLE = 2 ** 53
# MLflow's key for inference parameters beside the rows; scikit-learn's predict takes none.
PARAMS = "params"
# A number written with a decimal comma, as spreadsheets write it in ";" files ("12,5").
DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+")


@dataclass
class Table:
    """Rows sent as lists (MLflow `instances`/`inputs`, `dataframe_split`, CSV): `columns`
    names each position of every row of `data`."""

    columns: list[str]
    data: list


def _format_error(message: str) -> BadRequest:
    return BadRequest(message + f"; send one of {', '.join(JSON_FORMATS)} (or a text/csv body)",
                      code="invalid_format")


def _type_name(value) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", str: "string", list: "array", dict: "object",
            int: "number", float: "number"}.get(type(value), type(value).__name__)


def _sent_twice(name: str, *, features: bool = True) -> BadRequest:
    """Return the refusal of a name sent twice in one row (or one header)."""
    what = "feature" if features else "key"
    return BadRequest(f"the {what} '{name[:100]}' is sent twice; send each once",
                      code="duplicate_feature" if features else "duplicate_key",
                      details=[detail(name, "duplicate_feature" if features else "duplicate_key",
                                      f"this {what} is sent twice; one row has one value for it")])


def _unique_object(pairs: list[tuple]) -> dict:
    """json's object_pairs_hook: the object, refusing a key it holds twice (json keeps the last)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        name = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _sent_twice(name, features=name not in JSON_FORMATS and name != PARAMS)
    return obj


_decoder = json.JSONDecoder(object_pairs_hook=_unique_object)


def parse_json(body: bytes) -> object:
    """Given a request body, return its JSON value; BadRequest(invalid_json) if it is not JSON,
    BadRequest(duplicate_feature) if an object has a key twice. A UTF-8 BOM is skipped."""
    try:
        return _decoder.decode(body.decode("utf-8-sig"))
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


def rows_from_json(doc: object, names: list[str]) -> tuple[list[dict] | Table, str]:
    """Given a parsed JSON body, return its rows ({feature: value} dicts, or a Table of lists)
    and the format used. MLflow's `params` may stand beside the rows: it is ignored."""
    if not isinstance(doc, dict):
        raise _format_error(f"the body must be a JSON object, received {_type_name(doc)}")
    keys = [k for k in JSON_FORMATS if k in doc]
    if len(keys) != 1:
        raise _format_error("the body must have exactly one format key"
                            if keys else "the body has no known format key")
    extra = set(doc) - {keys[0], PARAMS}
    if extra:
        raise _format_error(f"unexpected key '{sorted(extra)[0][:40]}' beside '{keys[0]}'")
    if not isinstance(doc.get(PARAMS, {}), (dict, type(None))):
        raise _format_error(f"'{PARAMS}' must be an object, received {_type_name(doc[PARAMS])}")
    fmt = keys[0]
    value = doc[fmt]
    if fmt == "features":
        if not isinstance(value, dict):
            raise _format_error(f"'features' must be an object of name: value, "
                                f"received {_type_name(value)}")
        return [value], fmt
    if fmt == "dataframe_split":
        return _table_from_split(value), fmt
    if fmt == "inputs" and isinstance(value, dict):
        return _table_from_columns(value), fmt
    if not isinstance(value, list):
        raise _format_error(f"'{fmt}' must be an array of rows, received {_type_name(value)}")
    kinds = set(map(type, value))
    if kinds == {dict}:  # the usual case, checked in one pass in C
        return value, fmt
    if fmt != "dataframe_records" and kinds == {list}:  # rows in the model's order
        lengths = list(map(len, value))
        if set(lengths) != {len(names)}:
            i = next(i for i, n in enumerate(lengths) if n != len(names))
            raise _row_length(i, lengths[i], len(names))
        return Table(names, value), fmt
    if fmt != "dataframe_records" and len(names) == 1 \
            and not kinds & {list, dict}:  # one feature: each item is a row's one value
        return Table(names, [[v] for v in value]), fmt
    rows = []
    for i, item in enumerate(value):
        if isinstance(item, list) and fmt != "dataframe_records":
            if len(item) != len(names):
                raise _row_length(i, len(item), len(names))
            rows.append(dict(zip(names, item)))
        elif isinstance(item, dict):
            rows.append(item)
        else:
            raise _format_error(f"row {i} of '{fmt}' must be an object, "
                                f"received {_type_name(item)}")
    return rows, fmt


def _row_length(i: int, n: int, expected: int) -> BadRequest:
    return BadRequest(f"row {i} has {n} values; expected {expected}, one per feature in the "
                      "model's order", code="invalid_format")


def _table_from_split(value: object) -> Table:
    if not (isinstance(value, dict) and isinstance(value.get("columns"), list)
            and isinstance(value.get("data"), list)):
        raise _format_error("'dataframe_split' must be an object with 'columns' and 'data' arrays")
    columns = value["columns"]
    if not all(isinstance(c, str) for c in columns):
        raise _format_error("'dataframe_split.columns' must be an array of strings")
    data = value["data"]
    if set(map(type, data)) - {list} or set(map(len, data)) - {len(columns)}:
        i = next(i for i, r in enumerate(data)
                 if not isinstance(r, list) or len(r) != len(columns))
        raise BadRequest(f"row {i} of 'dataframe_split.data' must be an array of "
                         f"{len(columns)} values", code="invalid_format")
    return Table(columns, data)


def _table_from_columns(value: dict) -> Table:
    """Given MLflow's column-wise `inputs` ({feature: [value per row]}), return its rows."""
    columns = list(value)
    if not all(isinstance(v, list) for v in value.values()):
        name = next(c for c in columns if not isinstance(value[c], list))
        raise _format_error(f"column '{name[:40]}' of 'inputs' must be an array of values, "
                            f"received {_type_name(value[name])}")
    if len(set(map(len, value.values()))) > 1:
        raise _format_error("the columns of 'inputs' must have one value per row each; "
                            "their lengths differ")
    return Table(columns, list(map(list, zip(*value.values()))))


def _csv_separator(text: str) -> str:
    """Return ';' when the header line has more semicolons than commas outside quotes, else ','
    (as the page's site/csv.js decides)."""
    header = re.sub(r'"[^"]*"', "", re.split(r"\r\n|\r|\n", text, maxsplit=1)[0])
    return ";" if header.count(";") > header.count(",") else ","


def rows_from_csv(body: bytes) -> tuple[Table, str]:
    """Given a text/csv body with a header row (separated by ',' or ';'; LF, CRLF or CR line
    ends), return its rows as a Table of text cells (None for an empty one) and the separator."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the CSV body is not UTF-8 text", code="invalid_csv") from None
    separator = _csv_separator(text)
    try:
        reader = csv.reader(io.StringIO(text, newline=None), delimiter=separator)
        header = next(reader, None)
        if not header:
            raise BadRequest("the CSV body has no header row", code="invalid_csv")
        header = [h.strip() for h in header]
        rows = []
        for line in reader:
            # A blank line, or a spreadsheet's row of empty cells, is no row; in a file of one
            # column, a line with an empty cell ("") is a row (of empty text, say).
            if not line or (len(header) > 1 and not any(cell.strip() for cell in line)):
                continue
            if len(line) != len(header):
                raise BadRequest(f"CSV row {len(rows)} has {len(line)} cells; the header has "
                                 f"{len(header)}", code="invalid_csv")
            rows.append([cell if cell.strip() != "" else None for cell in line])
        return Table(header, rows), separator
    except csv.Error as exc:
        raise BadRequest(f"the CSV body cannot be read ({exc})", code="invalid_csv") from None


def check_row_count(rows: list | Table, max_rows: int) -> None:
    """Raise if a request has no rows or more than max_rows."""
    n = len(rows.data) if isinstance(rows, Table) else len(rows)
    if not n:
        raise BadRequest("the request has no rows", code="no_rows")
    if n > max_rows:
        raise PayloadTooLarge(f"the request has {n} rows; at most {max_rows} are "
                              "accepted per request, split it", code="too_many_rows")


def _number(value, *, text: bool, decimal_comma: bool = False) -> float | None:
    if text and isinstance(value, str):
        value = value.strip()
        if decimal_comma and DECIMAL_COMMA.fullmatch(value):
            value = value.replace(",", ".")
        try:
            return float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_value(feature: dict, value, *, text: bool, row: int | None,
                 decimal_comma: bool = False):
    """Given one feature's schema and a value, return (clean value, problem or None)."""
    name, kind = feature["name"], feature["type"]
    if kind == "text":
        limit = feature["max_length"]
        if not isinstance(value, str):
            return None, detail(name, "invalid_type", f"expected text, received "
                                f"{_type_name(value)}", row=row, expected=kind)
        if len(value) > limit:
            return None, detail(name, "too_long", f"expected text of at most {limit} "
                                f"characters, received {len(value)}", row=row, expected=kind)
        return value, None
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
    number = _number(value, text=text, decimal_comma=decimal_comma)
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
    if kind == "integer" and abs(number) > MAX_WHOLE:
        return None, detail(name, "too_large", f"expected a whole number between {-MAX_WHOLE} "
                            f"and {MAX_WHOLE}", row=row, expected=kind)
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


def _checked_matrix(X: np.ndarray, features: list[dict]):
    """Given a float matrix in feature order, return (X, warnings) when every value is a valid
    plain number; None otherwise (the value-by-value path then names each problem)."""
    _, whole, lows, highs = _numeric_schema(features)
    if not (np.isfinite(X).all() and (np.abs(X) <= MAX_MAGNITUDE).all()):
        return None
    if whole and not ((X[:, whole] == np.floor(X[:, whole])).all()
                      and (np.abs(X[:, whole]) <= MAX_WHOLE).all()):
        return None
    outside = (X < lows) | (X > highs)
    warnings: list[list[dict]] = [[] for _ in range(len(X))]
    for i, j in zip(*np.nonzero(outside)):  # row by row, in feature order
        warnings[i].append(_range_warning(features[j], float(X[i, j])))
    return X, warnings


def _only_numbers(cells) -> bool:
    return set(map(type, cells)) <= {float, int}  # not bool, str, None, nested values...


def _validate_numbers(rows: list[dict], features: list[dict]):
    """Given JSON rows and an all-numeric schema, return (matrix, warnings) when every row
    holds exactly the features with valid plain numbers; None otherwise, so that the
    value-by-value path finds and names each problem with its usual words."""
    names = _numeric_schema(features)[0]
    # Loops over every row and value run in C (map, itemgetter). A row holds exactly the
    # features when it has as many keys and each feature is one of them (names are unique).
    if set(map(len, rows)) != {len(names)}:
        return None
    try:
        cells = list(map(operator.itemgetter(*names), rows)) if len(names) > 1 else \
            [[row[names[0]]] for row in rows]
    except KeyError:
        return None
    if not _only_numbers(chain.from_iterable(cells)):
        return None
    try:  # every value is an int or a float here: fromiter converts them as np.array would
        X = np.fromiter(chain.from_iterable(cells), dtype=float,
                        count=len(rows) * len(names)).reshape(len(rows), len(names))
    except OverflowError:
        return None
    return _checked_matrix(X, features)


def _missing(feature: dict, *, row: int | None) -> dict:
    return detail(feature["name"], "missing_feature",
                  f"expected a {feature['type']} value, received nothing", row=row)


def validate(rows: list[dict], features: list[dict], *, text: bool = False,
             decimal_comma: bool = False):
    """Given raw rows and the feature schema, return (matrix, per-row warnings).

    Every missing, unknown or invalid value across all rows is collected into one
    InvalidInput (up to MAX_DETAILS), so a caller can fix everything in one go. A feature
    marked optional may be missing or null: NaN in a numeric column, None otherwise.
    """
    numeric = all(f["type"] in NUMERIC_TYPES for f in features)
    if not text and numeric:
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
            if row.get(name) is None:
                if not feature.get("optional"):
                    problems.append(_missing(feature, row=at))
                clean.append(np.nan if feature["type"] in NUMERIC_TYPES else None)
                continue
            value, problem = _check_value(feature, row[name], text=text, row=at,
                                          decimal_comma=decimal_comma)
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
    return np.array(matrix, dtype=float if numeric else object), warnings


def _check_columns(columns: list[str], features: list[dict]) -> None:
    """Refuse a header that names a feature twice, names one the model does not take, or
    leaves out one that is not optional: each said once, not once per row."""
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise _sent_twice(name)
        seen.add(name)
    known = {f["name"] for f in features}
    problems = [detail(str(c), "unknown_feature", "this feature is not one the model takes")
                for c in columns if c not in known]
    problems += [detail(f["name"], "missing_feature", f"expected a {f['type']} value in every "
                        "row; there is no column for it") for f in features
                 if f["name"] not in seen and not f.get("optional")]
    if problems:
        raise InvalidInput(problems)


def _number_matrix(data: list, *, booleans: bool) -> np.ndarray | None:
    """Given rows as lists, return them as a float matrix when every value is a JSON number,
    else None. NumPy reads text and null as other dtypes, but true and false as 1 and 0: unless
    the body holds no `true`/`false` at all (`booleans` false), each value's type is checked."""
    if booleans and not _only_numbers(chain.from_iterable(data)):
        return None
    try:
        X = np.array(data)
    except (ValueError, OverflowError):  # ragged nesting; an integer beyond a float's range
        return None
    if X.ndim != 2 or X.dtype.kind not in "fi":
        return None
    return X.astype(float, copy=False)


def validate_table(table: Table, features: list[dict], *, text: bool = False,
                   decimal_comma: bool = False, booleans: bool = True):
    """Given rows as lists under named columns, return (matrix, per-row warnings): numbers
    straight into the matrix, column-wise; anything else value by value, with the same words.
    `booleans` false says the body has no JSON true or false anywhere."""
    _check_columns(table.columns, features)
    names = [f["name"] for f in features]
    if not text and len(table.columns) == len(names) and table.data \
            and all(f["type"] in NUMERIC_TYPES for f in features):
        X = _number_matrix(table.data, booleans=booleans)
        if X is not None and table.columns != names:  # dataframe_split in another order
            X = X[:, [table.columns.index(n) for n in names]]
        fast = _checked_matrix(X, features) if X is not None else None
        if fast is not None:
            return fast
    if text:  # an empty cell of a text feature is empty text
        empty = [j for j, c in enumerate(table.columns)
                 if any(f["name"] == c and f["type"] == "text" for f in features)]
        for cells in table.data:
            for j in empty:
                if cells[j] is None:
                    cells[j] = ""
    columns = table.columns
    return validate([dict(zip(columns, cells)) for cells in table.data], features, text=text,
                    decimal_comma=decimal_comma)


def read_rows(body: bytes, media_type: str, features: list[dict], max_rows: int):
    """Given a body and its media type, return (matrix, warnings, format) or raise an ApiError."""
    names = [f["name"] for f in features]
    if media_type == "text/csv":
        table, separator = rows_from_csv(body)
        check_row_count(table, max_rows)
        matrix, warnings = validate_table(table, features, text=True,
                                          decimal_comma=separator == ";")
        return matrix, warnings, "csv"
    rows, fmt = rows_from_json(parse_json(body), names)
    check_row_count(rows, max_rows)
    if isinstance(rows, Table):  # a body without true/false has no boolean to look for
        matrix, warnings = validate_table(rows, features,
                                          booleans=b"true" in body or b"false" in body)
    else:
        matrix, warnings = validate(rows, features)
    return matrix, warnings, fmt
