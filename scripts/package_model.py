"""Package your own fitted scikit-learn model so the unchanged function and site serve it.

Given a fitted estimator (a Pipeline included) saved with pickle or joblib, and a CSV of
reference data with the name of its target column if it has one, writes a model directory:
the model as one verified pickle and a complete manifest (features with types, ranges and
medians, examples, metrics when the target is given, whether the model takes a DataFrame).
Refuses, saying the cause and the fix, what the function could not serve as it was fitted.
Serve it with MODEL_DIR=<that directory>.

    python scripts/package_model.py my_model.pkl reference.csv --target price --out my_model/
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import InconsistentVersionWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netlify" / "functions"))
import modelcard  # noqa: E402
from predict import frames  # noqa: E402  the function's own input builder: parity by construction
from predict.settings import SettingsError, from_env  # noqa: E402
from predict.audit import audit  # noqa: E402
from predict.unpickle import ForbiddenGlobal, Refused, SafeUnpickler  # noqa: E402


CARD_KEYS = {"title", "description", "intended_use", "limitations", "label_descriptions",
             "features"}
FEATURE_WORDS = {"label", "description", "unit"}


# The packages whose objects the function rebuilds from a pickle (and what they rely on).
SERVABLE_MODULES = {"sklearn", "numpy", "scipy", "pandas", "joblib", "builtins", "copyreg",
                    "collections", "_codecs", "functools", "operator", "datetime"}
CUSTOM_FIX = ("the function only rebuilds scikit-learn, NumPy, SciPy and pandas objects (a "
              "pickle's other code would run unchecked on the server). Replace it with a "
              "scikit-learn or NumPy equivalent (e.g. FunctionTransformer(np.log1p)), fit again "
              "and save the model again")
COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"),
              (b"\x5d\x00\x00", "lzma"), (b"\x04\x22\x4d\x18", "lz4"), (b"\x78", "zlib"))
MAX_LISTED = 20  # empty cells named in one refusal


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


def _source_format(data: bytes) -> str:
    """Given a model file's bytes, return how it was saved: pickle, joblib, or joblib compressed."""
    for magic, name in COMPRESSED:
        if data.startswith(magic):
            return f"joblib ({name})"
    return "joblib" if b"NumpyArrayWrapper" in data else "pickle"


def _why_unreadable(path: Path, exc: Exception) -> str:
    """Given why unpickling failed, return the true cause and its fix."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        fix = ("pip install -r requirements-pandas.txt" if top == "pandas" else
               f"if it is a package, install it (pip install {top}); if it is your own module, "
               "the function cannot serve it: " + CUSTOM_FIX)
        return f"{path} needs the Python package '{top}', which is not installed here: {fix}"
    found = re.search(r"Can't get attribute '([^']+)' on <module '([^']+)'", str(exc))
    if isinstance(exc, AttributeError) and found:
        name, module = found.groups()
        where = ("the script or notebook that saved the model (__main__)"
                 if module.split(".")[-1] == "__main__"
                 else f"module {module}, which has no such name here")
        return (f"{path} refers to '{name}', a custom function or class defined in {where}: "
                + CUSTOM_FIX)
    return (f"{path} is not a readable pickle or joblib file ({type(exc).__name__}); save the "
            "fitted estimator with pickle.dump(model, f) or joblib.dump(model, path)")


class _SafeJoblibUnpickler(SafeUnpickler):
    """The function's checked unpickler, also reading the arrays joblib stores after its pickle
    (each checked like a pickled one: a rebuilt dtype, exactly the bytes its shape needs)."""

    dispatch = dict(SafeUnpickler.dispatch)
    WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")

    def __init__(self, fobj, *, size: int, extra: frozenset[str]):
        super().__init__(fobj, size=size, extra=extra)
        self.fobj = fobj

    def find_class(self, module: str, name: str):
        if (module, name) == self.WRAPPER:
            from joblib.numpy_pickle import NumpyArrayWrapper
            self.callables[id(NumpyArrayWrapper)] = NumpyArrayWrapper
            return NumpyArrayWrapper
        return super().find_class(module, name)

    def _python_class(self, cls) -> bool:
        return (getattr(cls, "__module__", None), getattr(cls, "__name__", None)) == \
            self.WRAPPER or super()._python_class(cls)

    def load_build(self):
        if (type(self.stack[-2]).__module__, type(self.stack[-2]).__name__) == self.WRAPPER:
            state = self.stack.pop()
            self.stack[-1] = self._read_array(state)
            return
        super().load_build()
    dispatch[b"b"[0]] = load_build

    def _read_array(self, state) -> np.ndarray:
        keys = {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}
        if not isinstance(state, dict) or not set(state) <= keys \
                or state.get("subclass") is not np.ndarray or state.get("order") not in "CF":
            raise Refused("a joblib array's description is malformed")
        dtype, shape = self._checked_dtype(state.get("dtype")), state.get("shape")
        count = int(np.prod(shape, dtype=object)) if isinstance(shape, tuple) else -1
        if dtype.hasobject:
            inner = _SafeJoblibUnpickler(self.fobj, size=self.size, extra=self.extra)
            array = inner.load()
            if not isinstance(array, np.ndarray) or array.shape != shape:
                raise Refused("a joblib object array does not match its description")
            return array
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self.fobj.read(1)
            if padding and padding[0]:
                self.fobj.read(padding[0])
        chunks, left = [], count * dtype.itemsize
        while left > 0:
            chunk = self.fobj.read(min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if count < 0 or left != 0 or dtype.itemsize == 0:
            raise Refused(f"a joblib array needs {count * dtype.itemsize} bytes; the file "
                          f"carries {len(data)}")
        array = np.frombuffer(bytearray(data), dtype=dtype)
        array = array.reshape(shape[::-1]).T if state["order"] == "F" else array.reshape(shape)
        return array.astype(dtype.newbyteorder("=")) if dtype.byteorder == ">" else array


def _restricted_joblib_load(data: bytes, trusted: frozenset):
    """Given a pickle or joblib file's bytes (compressed or not), return the object rebuilt and
    audited by the function's own checks, refusing any global outside the allow list before it
    is imported (ForbiddenGlobal) and anything else a model never holds (Refused)."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    with _validate_fileobject_and_memmap(io.BytesIO(data), "", None) as (fobj, _):
        obj = _SafeJoblibUnpickler(fobj, size=len(data), extra=frozenset(trusted)).load()
    audit(obj, extra=frozenset(trusted))
    return obj


def _why_forbidden(path: Path, exc: ForbiddenGlobal) -> str:
    """Given the global the allow list refused, return the true cause and its fix."""
    module = exc.name.rpartition(".")[0]
    top = module.split(".")[0]
    if top == "__main__":
        return (f"{path} refers to '{exc.name.rpartition('.')[2]}', a custom function or class "
                "defined in the script or notebook that saved the model (__main__): " + CUSTOM_FIX)
    if importlib.util.find_spec(top) is None:
        fix = ("pip install -r requirements-pandas.txt" if top == "pandas" else
               f"if it is a package, install it (pip install {top}); if it is your own module, "
               "the function cannot serve it: " + CUSTOM_FIX)
        return f"{path} needs the Python package '{top}', which is not installed here: {fix}"
    if top not in SERVABLE_MODULES:
        return (f"{path}: {exc} (the model uses {exc.name}, custom code outside scikit-learn, "
                f"NumPy, SciPy and pandas): {CUSTOM_FIX} If it is your own code and you trust "
                f"it, list it in TRUSTED_GLOBALS (e.g. TRUSTED_GLOBALS={exc.name}).")
    return (f"{path}: {exc}; the function would refuse it too. If that global is your own "
            "code and you trust it, list it in TRUSTED_GLOBALS "
            "(e.g. TRUSTED_GLOBALS=mypkg.features.Scaler)")


def _version_mismatch(caught: list, path: Path, allow: bool) -> str | None:
    """Given the warnings of unpickling, return the scikit-learn version that wrote the file if it
    differs from this one; refuse it unless allowed."""
    written = next((w.message.original_sklearn_version for w in caught
                    if issubclass(w.category, InconsistentVersionWarning)), None)
    if written is not None and not allow:
        raise PackagingError(
            f"{path} was written by scikit-learn {written}; this runtime serves with "
            f"{sklearn.__version__}, and a model can predict differently, or fail, under another "
            f"version. Re-save it with scikit-learn {sklearn.__version__}: in an environment with "
            f"pip install scikit-learn=={sklearn.__version__}, fit it again and dump it. Or pass "
            "--allow-version-mismatch to serve it anyway (the manifest records it)")
    return written


def load_estimator(path: Path, *, allow_version_mismatch: bool = False):
    """Return the unpickled estimator (pickle or joblib, compressed or not), checked to be a fitted
    classifier or regressor, and where it came from (file, format, SHA-256, scikit-learn)."""
    try:
        trusted = from_env().trusted_globals
    except SettingsError as exc:
        raise PackagingError(str(exc)) from None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackagingError(f"cannot read {path}: {exc.strerror}") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            # through the function's own allow list: nothing that is not a model ever runs here
            estimator = _restricted_joblib_load(data, trusted)
        except ForbiddenGlobal as exc:
            raise PackagingError(_why_forbidden(path, exc)) from None
        except Refused as exc:
            raise PackagingError(f"{path} is refused: {exc}. It is not a pickle scikit-learn "
                                 "writes for a fitted model; do not serve it") from None
        except Exception as exc:  # unpickling can fail in many ways; each is explained
            raise PackagingError(_why_unreadable(path, exc)) from None
    written = _version_mismatch(caught, path, allow_version_mismatch)
    source = {"file": path.name, "format": _source_format(data),
              "sha256": hashlib.sha256(data).hexdigest(),
              "scikit-learn": written or sklearn.__version__}
    if written is not None:
        source["version_mismatch_allowed"] = True
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
    return estimator, source


class _Recorder(SafeUnpickler):
    """The function's restricted unpickler, noting every global (module, name) it is asked for."""

    def __init__(self, file, *, size: int, extra: frozenset[str]):
        super().__init__(file, size=size, extra=extra)
        self.found: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str):
        self.found.add((module, name))
        return super().find_class(module, name)


def served_globals(estimator, path: Path) -> set[tuple[str, str]]:
    """Return the (module, name) globals the estimator's served pickle names, unpickling it as
    the function will; PackagingError for a pickle the function would refuse."""
    data = modelcard.stable_pickle(estimator)
    recorder = _Recorder(io.BytesIO(data), size=len(data),
                         extra=frozenset(from_env().trusted_globals))
    try:
        recorder.load()
    except ForbiddenGlobal as exc:
        raise PackagingError(_why_forbidden(path, exc)) from None
    except Refused as exc:
        raise PackagingError(f"{path}: the function would refuse the served pickle: {exc}") \
            from None
    return recorder.found


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
    if target is None:
        return header, body, None
    if target not in header:
        raise PackagingError(f"the target column '{target}' is not in {path}; its columns are: "
                             + ", ".join(header))
    k = header.index(target)
    check_complete(path, [target], [[r[k]] for r in body],
                   why="the target column needs a value in every row")
    return ([h for j, h in enumerate(header) if j != k],
            [[c for j, c in enumerate(r) if j != k] for r in body], [r[k] for r in body])


def check_complete(path: Path, header: list[str], body: list[list[str]], *,
                   why: str = "reference data must be complete") -> None:
    """Refuse empty cells, naming each (line and column) up to MAX_LISTED, and saying why."""
    empty = [f"line {i} '{header[j]}'" for i, row in enumerate(body, start=2)
             for j, cell in enumerate(row) if cell.strip() == ""]
    if empty:
        more = f" (and {len(empty) - MAX_LISTED} more)" if len(empty) > MAX_LISTED else ""
        raise PackagingError(f"{path} has {len(empty)} empty cell{'s' if len(empty) > 1 else ''}; "
                             f"{why}: " + ", ".join(empty[:MAX_LISTED]) + more)


def _target_hint(extra: list[str], target: str | None) -> str:
    if target is not None or not extra:
        return ""
    column = extra[0] if len(extra) == 1 else "<column>"
    return f". If {'it' if len(extra) == 1 else 'one of them'} is the target, pass --target {column}"


def feature_order(estimator, columns: list[str], target: str | None = None) -> list[str]:
    """Return the model's feature names in its order, checked against the CSV's columns."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        names = [str(n) for n in names]
        missing = sorted(set(names) - set(columns))
        extra = sorted(set(columns) - set(names))
        if missing or extra:
            parts = [f"missing from the CSV: {', '.join(missing)}" if missing else "",
                     f"not known to the model: {', '.join(extra)}" if extra else ""]
            raise PackagingError("the CSV's columns do not match the model's features ("
                                 + "; ".join(p for p in parts if p) + ")"
                                 + _target_hint(extra, target))
        return names
    expected = getattr(estimator, "n_features_in_", len(columns))
    if expected != len(columns):
        hint = (". If one of them is the target, pass --target <column>"
                if target is None and expected == len(columns) - 1 else "")
        raise PackagingError(f"the model takes {expected} features; the CSV has {len(columns)} "
                             "columns besides the target" + hint)
    return columns


def build_matrix(columns, rows, names, *, text: frozenset = frozenset()) -> tuple[np.ndarray, list[str]]:
    """Return the reference rows as the matrix the function will build (an empty cell: NaN in a
    numeric column, None in another, "" in a text one), and each feature's type."""
    index = [columns.index(n) for n in names]
    table = [[row[j].strip() for j in index] for row in rows]
    types = ["text" if n in text else modelcard.infer_type([r[k] for r in table])
             for k, n in enumerate(names)]
    for k, n in enumerate(names):
        if types[k] == "text":  # a text step reads the text as written
            for r, row in zip(table, rows):
                r[k] = row[index[k]]
    numeric = all(t in NUMERIC_TYPES for t in types)
    X = np.array([[_cell(v, t) for v, t in zip(r, types)] for r in table],
                 dtype=float if numeric else object)
    return X, types


BOOL_TEXT = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}


def _label_of(text: str, classes: np.ndarray):
    """Given one target cell, return it as the model's own label (the value in classes_ whose
    text it is, else parsed as that dtype); ValueError if it cannot be one."""
    by_text = {str(c): c for c in classes}
    text = text.strip()
    if text in by_text:
        return by_text[text]
    kind = classes.dtype.kind
    if kind == "b":
        return np.bool_(BOOL_TEXT[text.lower()]) if text.lower() in BOOL_TEXT else _bad(text)
    if kind in "iu":
        number = float(text)
        return classes.dtype.type(int(number)) if number.is_integer() else _bad(text)
    if kind == "f":
        return classes.dtype.type(float(text))
    return text


def _bad(text: str):
    raise ValueError(text)


NUMERIC_TYPES = ("number", "integer")


def _cell(value: str, kind: str):
    if kind == "text":
        return value
    if value == "":
        return np.nan if kind in NUMERIC_TYPES else None
    return float(value) if kind in NUMERIC_TYPES else value




def _is_text_step(step) -> bool:
    """Return whether a step consumes free text: a vectorizer, or a pipeline starting with one."""
    first = step.steps[0][1] if hasattr(step, "steps") else step
    return hasattr(first, "build_analyzer")


def fitted_on_one_text_column(estimator) -> bool:
    """Return whether the estimator takes a list of strings (a text pipeline fitted on one
    column of text, e.g. make_pipeline(TfidfVectorizer(), LogisticRegression()))."""
    return _is_text_step(estimator)


def text_columns(estimator, names: list[str]) -> set[str]:
    """Return the features a text step consumes: one column of a ColumnTransformer given to a
    vectorizer, or the one feature of a model fitted on a list of strings."""
    if fitted_on_one_text_column(estimator):
        return set(names)
    found = set()
    for part in _parts(estimator):
        for _, step, where in getattr(part, "transformers_", None) or []:
            if not _is_text_step(step):
                continue
            if isinstance(where, str):
                found.add(where)
            elif isinstance(where, (int, np.integer)) and 0 <= where < len(names):
                found.add(names[where])
    return found


# A string column with at least this share of distinct values (over enough rows) looks like
# free text rather than a category.
DISTINCT_SHARE, DISTINCT_ROWS = 0.9, 20


def warn_free_text(X: np.ndarray, names: list[str], types: list[str], declared: set[str]) -> None:
    """Say on stderr which categorical columns look like free text, and how to declare them."""
    for j, (name, kind) in enumerate(zip(names, types)):
        if kind != "categorical" or name in declared or len(X) < DISTINCT_ROWS:
            continue
        distinct = len(set(X[:, j]))
        if distinct >= DISTINCT_SHARE * len(X):
            print(f"package_model: warning: column '{name}' has {distinct} distinct values in "
                  f"{len(X)} rows; served as a category, only those values are accepted. If it "
                  f"is free text, pass --text '{name}' (any text is then accepted: the model must "
                  f"take values it has not seen); to keep it a category and silence this, pass "
                  f"--categorical '{name}'", file=sys.stderr)


IMPUTERS = ("SimpleImputer", "KNNImputer", "IterativeImputer")


def _is_imputer(step) -> bool:
    first = step.steps[0][1] if hasattr(step, "steps") else step
    return type(first).__name__ in IMPUTERS


def _vouched_missing(estimator, names: list[str]) -> set[str]:
    """Return the features the model says take a missing value: every step's scikit-learn tags
    allow NaN, or an imputer comes first (for all columns, or in a ColumnTransformer for its
    columns)."""
    from sklearn.utils import get_tags

    steps = [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    if all(get_tags(s).input_tags.allow_nan for s in steps if s not in ("passthrough", None)) \
            or _is_imputer(steps[0]):
        return set(names)
    found = set()
    for _, step, where in getattr(steps[0], "transformers_", None) or []:
        if _is_imputer(step):
            cols = [where] if isinstance(where, (str, int, np.integer)) else list(where)
            found |= {names[c] if isinstance(c, (int, np.integer)) else c for c in cols}
    return found


PROBE_ROWS = 5
UNSEEN_TEXT = "a text that is not in the reference data"


def check_new_text(estimator, X: np.ndarray, features: list[dict], spec: dict,
                   declared: set[str]) -> None:
    """Refuse a column declared text (--text) in which the model cannot take a new value."""
    for j, feature in enumerate(features):
        if feature["name"] not in declared:
            continue
        rows = X[:PROBE_ROWS].copy()
        rows[:, j] = UNSEEN_TEXT
        try:
            estimator.predict(frames.model_input(rows, {"input": spec}))
        except Exception as exc:  # a model may refuse an unseen value in any way
            raise PackagingError(
                f"--text {feature['name']}: the model cannot predict with a value of that column "
                f"it has not seen ({type(exc).__name__}), so it cannot take free text there; "
                "fit it with a step that takes new values (e.g. OneHotEncoder(handle_unknown="
                "'ignore'), or a TfidfVectorizer), or leave the column a category") from None


def _takes_missing(estimator, X: np.ndarray, j: int, features: list[dict], spec: dict) -> bool:
    """Return whether the model predicts, finitely, reference rows with feature j missing."""
    rows = X[:PROBE_ROWS].copy()
    rows[:, j] = np.nan if features[j]["type"] in NUMERIC_TYPES else None
    marked = [{**f, "optional": True} if k == j else f for k, f in enumerate(features)]
    probe = frames.input_spec(marked, spec["container"], spec["reason"])
    try:
        predicted = estimator.predict(frames.model_input(rows, {"input": probe}))
    except Exception:  # a model may refuse a missing value in any way
        return False
    return predicted.dtype.kind not in "fc" or bool(np.isfinite(predicted).all())


def optional_features(estimator, X, features, spec, *, path: Path, columns, rows) -> set[str]:
    """Return the features the model takes a missing value for: those with empty reference
    cells (the model predicted them), and those its steps vouch for, each checked by a
    prediction; PackagingError for empty cells in a column the model cannot take them in."""
    names = [f["name"] for f in features]
    empty = {n for j, n in enumerate(names)
             if features[j]["type"] != "text" and any(
                 v is None or (isinstance(v, float) and np.isnan(v)) for v in X[:, j])}
    vouched = _vouched_missing(estimator, names) - empty
    found = set(empty)
    for j, name in enumerate(names):
        if name in vouched and features[j]["type"] != "text" \
                and _takes_missing(estimator, X, j, features, spec):
            found.add(name)
    refused = [n for n in empty if not _takes_missing(estimator, X, names.index(n), features, spec)]
    if refused:
        index = [columns.index(n) for n in refused]
        check_complete(path, refused, [[r[k] for k in index] for r in rows],
                       why="the model cannot take a missing value for "
                           + ", ".join(sorted(refused)))
    return found


def target_values(estimator, y_text: list[str]) -> np.ndarray:
    """Return the target column typed like the model's own labels (classes_: int, bool, float or
    text), or as numbers for a regressor."""
    classes = getattr(estimator, "classes_", None)
    try:
        if classes is None:
            return np.array(y_text, dtype=float)
        classes = np.asarray(classes)
        values = [_label_of(t, classes) for t in y_text]
        return np.array(values, dtype=classes.dtype if classes.dtype.kind in "biuf" else object)
    except ValueError:
        raise PackagingError("the target column's values do not match the model's "
                             f"({'numbers' if classes is None else 'labels ' + ', '.join(map(str, classes))})") from None


def _parts(obj):
    """Yield an estimator and every estimator inside it, fitted copies in a ColumnTransformer too."""
    yield obj
    inner = [v for v in obj.get_params(deep=False).values() if hasattr(v, "get_params")]
    for key in ("steps", "transformers_", "transformer_list"):
        inner += [t[1] for t in getattr(obj, key, None) or [] if hasattr(t[1], "get_params")]
    for part in inner:
        yield from _parts(part)


def _outputs_pandas(estimator) -> bool:
    """Return whether any step of the estimator was set to output DataFrames (set_output)."""
    # sklearn keeps set_output's choice in this attribute; there is no public getter.
    return any((getattr(p, "_sklearn_output_config", None) or {}).get("transform") == "pandas"
               for p in _parts(estimator))


def _predict(estimator, X):
    """Return the estimator's predictions on X, or the exception it raised."""
    try:
        return estimator.predict(X)
    except Exception as exc:  # a model may fail in any way on an input it was not fitted for
        return exc


def choose_input(estimator, X: np.ndarray, features: list[dict], found) -> tuple[dict, list[str]]:
    """Return the manifest's `input` entry and `requires` list: a DataFrame, and pandas, only
    when the model needs them."""
    pandas_used = _outputs_pandas(estimator) or any(m.split(".")[0] == "pandas" for m, _ in found)
    if not hasattr(estimator, "feature_names_in_"):
        spec = frames.input_spec(features, frames.ARRAY, "fitted on an array")
        return spec, _pandas_requirement() if pandas_used else []
    frame_spec = frames.input_spec(features, frames.DATAFRAME, "")
    on_array = _predict(estimator, X)
    if isinstance(on_array, Exception):
        reason = "fitted on a pandas DataFrame; it cannot predict from an array (e.g. it " \
                 "selects columns by name)"
    elif pandas_used:
        reason = "fitted on a pandas DataFrame; it uses pandas itself"
    else:
        frame = frames.model_input(X, {"input": frame_spec}) if _has_pandas() else None
        if frame is None or np.array_equal(on_array, estimator.predict(frame)):
            return (frames.input_spec(features, frames.ARRAY, "fitted on a pandas DataFrame; an "
                                      "array in its column order gives the same predictions"), [])
        reason = "fitted on a pandas DataFrame; an array gives other predictions"
    requires = _pandas_requirement()
    return {**frame_spec, "reason": reason}, requires


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def _pandas_requirement() -> list[str]:
    """Return the pandas requirement of a model that needs it; refuse if pandas is missing here."""
    if not _has_pandas():
        raise PackagingError("the model needs pandas (it was fitted on a DataFrame, or uses "
                             "pandas), which is not installed here: pip install -r "
                             "requirements-pandas.txt, then package it again")
    import pandas
    return [f"pandas=={pandas.__version__}"]


@dataclass
class Evaluation:
    """The rows the card's metrics and examples come from, and what they are in words."""

    X: np.ndarray
    y_text: list[str] | None
    data: str
    held_out: bool


def held_out_rows(path: Path, columns: list[str], target: str | None) -> tuple[list, list[str]]:
    """Return a held-out CSV's rows in the reference CSV's column order, and its target column."""
    if target is None:
        raise PackagingError("--held-out needs --target: its rows are scored against the target")
    held_columns, body, y_text = read_reference(path, target)
    if sorted(held_columns) != sorted(columns):
        raise PackagingError(f"{path}'s columns differ from the reference CSV's; give both the "
                             "same columns (in any order)")
    order = [held_columns.index(c) for c in columns]
    return [[row[j] for j in order] for row in body], y_text


def split_rows(n: int, y_text: list[str] | None, *, fraction: float, seed: int,
               stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices of the rows kept for training and of those held out, chosen as
    train_test_split(rows, test_size=fraction, random_state=seed) chooses them."""
    from sklearn.model_selection import train_test_split

    if y_text is None:
        raise PackagingError("--split needs --target: the held-out rows are scored against it")
    if not 0 < fraction < 1:
        raise PackagingError("--split is the held-out share of the reference rows: a number "
                             "between 0 and 1, e.g. 0.2")
    try:
        return train_test_split(np.arange(n), test_size=fraction, random_state=seed,
                                stratify=y_text if stratify else None)
    except ValueError as exc:
        raise PackagingError(f"cannot split the reference rows that way: {exc}") from None


# The isolated first load and predictions of a user's file (see isolate()).
TRIAL_CPU_S = 60  # CPU seconds
TRIAL_WALL_S = 120  # seconds on the clock (a process blocked on I/O uses no CPU)
TRIAL_MEMORY = 640 << 20  # bytes of address space, plus 8 times the model file's size
TRIAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
             "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "JOBLIB_MULTIPROCESSING": "0"}
TRIAL_MARK = "package_model refused: "  # the child's PackagingError follows it on stderr
TRIAL_RESULT = "package_model manifest: "  # the manifest the child built follows it on stdout
# The child finds modules where this process does (a TRUSTED_GLOBALS module, or naming one
# that is missing).
TRIAL_CODE = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); import package_model; "
              "sys.exit(package_model.trial_main(sys.argv[2:]))")


def trial_main(argv: list[str]) -> int:
    """In the isolated child: everything package() does but write (load the file, checked and
    audited; read and predict the reference and held-out rows; work out the card), then call
    each prediction method the function may call; exit 2 with the PackagingError on stderr."""
    model, data, options = argv
    options = {k: Path(v) if k in PATH_OPTIONS and v is not None else v
               for k, v in json.loads(options).items()}
    try:
        estimator, manifest, Xm = build(Path(model), Path(data), **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for method in ("predict", "predict_proba", "decision_function"):
                if hasattr(estimator, method):
                    _predict_with(estimator, method, Xm)
        text = json.dumps(modelcard.jsonable(manifest), allow_nan=False)
    except PackagingError as exc:
        print(TRIAL_MARK + str(exc), file=sys.stderr)
        return 2
    print(TRIAL_RESULT + text)  # the last line: the model may have printed before it
    return 0


def _predict_with(estimator, method: str, X):
    try:
        return getattr(estimator, method)(X)
    except Exception:  # the parent reports a model that cannot predict, with its words
        return None


def _trial_limits(memory: int) -> None:
    """In the child, before it runs Python: CPU, address space, no file writes, no core file."""
    os.setsid()
    for limit, value in ((resource.RLIMIT_CPU, TRIAL_CPU_S), (resource.RLIMIT_AS, memory),
                         (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))


def isolate(model_path: Path, data_path: Path, options: dict) -> dict:
    """Build the manifest (load the user's file, predict the reference rows) in a child process
    that cannot write a file, runs out of CPU and memory quickly, holds none of this
    environment's secrets and works in an empty scratch directory; return the manifest it
    built, or PackagingError unless it passed there."""
    try:
        size = model_path.stat().st_size
    except OSError as exc:
        raise PackagingError(f"cannot read {model_path}: {exc.strerror}") from None
    memory = TRIAL_MEMORY + 8 * size
    env = dict(TRIAL_ENV)
    if "TRUSTED_GLOBALS" in os.environ:
        env["TRUSTED_GLOBALS"] = os.environ["TRUSTED_GLOBALS"]
    path = [str(Path(__file__).resolve().parent)] + [p for p in sys.path if p]
    argv = [sys.executable, "-I", "-W", "ignore", "-c", TRIAL_CODE, json.dumps(path),
            str(model_path.resolve()), str(data_path.resolve()),
            json.dumps({k: str(Path(v).resolve()) if k in PATH_OPTIONS and v is not None else v
                        for k, v in options.items()})]
    limits = (f"limits: {TRIAL_CPU_S} s of CPU, {memory >> 20} MB of memory, no file "
              "writes")
    with tempfile.TemporaryDirectory(prefix="package-model-trial-") as scratch:
        try:
            done = subprocess.run(argv, cwd=scratch, env={**env, "HOME": scratch,
                                                          "TMPDIR": scratch},
                                  preexec_fn=lambda: _trial_limits(memory),
                                  capture_output=True, text=True, timeout=TRIAL_WALL_S)
        except subprocess.TimeoutExpired:  # run() has killed the child
            raise PackagingError(f"{model_path}: loading it and predicting the reference rows "
                                 f"did not finish within {TRIAL_WALL_S} s in an isolated "
                                 "process; refused") from None
    for line in done.stderr.splitlines():  # what building the manifest warned of, passed on
        if line.startswith("package_model: warning: "):
            print(line, file=sys.stderr)
    if done.returncode == 2 and TRIAL_MARK in done.stderr:
        raise PackagingError(done.stderr.rpartition(TRIAL_MARK)[2].strip())
    message = done.stderr.strip().splitlines()
    if done.returncode < 0:
        raise PackagingError(f"{model_path}: loading it and predicting the reference rows in an "
                             f"isolated process ended by {signal.Signals(-done.returncode).name} "
                             f"({limits}); refused")
    if done.returncode != 0:
        last = message[-1][:300] if message else "no message"
        raise PackagingError(f"{model_path}: loading it and predicting the reference rows in an "
                             f"isolated process failed ({last}; {limits}); refused")
    if TRIAL_RESULT not in done.stdout:
        raise PackagingError(f"{model_path}: loading it and predicting the reference rows in an "
                             "isolated process gave no manifest; refused")
    return json.loads(done.stdout.rpartition(TRIAL_RESULT)[2])


def rows_to_score(columns, rows, y_text, names, *, data_path: Path, target: str | None,
                  held_out: Path | None, split: float | None, seed: int, stratify: bool,
                  text: frozenset[str] = frozenset()):
    """Return the training rows (for the feature schema), the feature types, the Evaluation
    (held-out rows when stated, else the reference rows) and the manifest's training_data."""
    training_data = {"reference": data_path.name, "rows": len(rows)}
    test_rows, test_y = held_out_rows(held_out, columns, target) if held_out else ([], None)
    X_all, types = build_matrix(columns, rows + test_rows, names, text=text)
    X, X_test = X_all[:len(rows)], X_all[len(rows):]
    if split is not None:
        train, test = split_rows(len(rows), y_text, fraction=split, seed=seed, stratify=stratify)
        X, X_test = X_all[train], X_all[test]
        y_text, test_y = [y_text[i] for i in train], [y_text[i] for i in test]
        training_data["split"] = {"train_rows": len(train), "test_rows": len(test),
                                  "test_size": split, "stratified": stratify, "seed": seed}
        stratified = ", stratify=<target>" if stratify else ""
        evaluation = Evaluation(X_test, test_y, held_out=True, data=(
            f"held-out rows of {data_path.name}: those train_test_split(test_size={split}, "
            f"random_state={seed}{stratified}) keeps aside, stated at packaging not to have "
            "been used in training"))
    elif held_out is not None:
        training_data["held_out"] = {"file": held_out.name, "rows": len(test_rows)}
        evaluation = Evaluation(X_test, test_y, held_out=True, data=(
            f"held-out rows in {held_out.name}, stated at packaging not to have been used in "
            "training"))
    else:
        evaluation = Evaluation(X, y_text, held_out=False, data=(
            f"the reference data {data_path.name}; if the model was trained on it, these "
            "scores are optimistic"))
    return X, types, evaluation, training_data


# package()'s options that name files (the isolated child gets them as absolute paths).
PATH_OPTIONS = ("card_path", "held_out")


def package(model_path: Path, data_path: Path, out_dir: Path, **options) -> dict:
    """Package a pickled (or joblib) estimator and its reference CSV into out_dir; return the
    manifest. The file is first loaded and its manifest built in an isolated process
    (isolate(), which runs build() there); only what passed there is loaded here and written
    as the served artifact. The options are build()'s."""
    manifest = isolate(model_path, data_path, options)
    estimator, _ = load_estimator(model_path, allow_version_mismatch=options.get(
        "allow_version_mismatch", False))
    return write_whole(out_dir, estimator, manifest)


def build(model_path: Path, data_path: Path, *, target: str | None = None,
          name: str | None = None, version: str = "1.0.0", description: str = "",
          positive: str | None = None, card_path: Path | None = None,
          allow_version_mismatch: bool = False, held_out: Path | None = None,
          split: float | None = None, seed: int = 0, stratify: bool = False,
          text: tuple[str, ...] = (), categorical: tuple[str, ...] = ()):
    """Load the estimator (checked and audited) and work out its manifest from the reference
    CSV; return (estimator, manifest, the evaluation rows as the model takes them). With
    held_out (a CSV) or split (a share of the reference rows), the card's metrics and examples
    come from those rows, stated to be unseen in training."""
    if held_out is not None and split is not None:
        raise PackagingError("give either --held-out or --split, not both")
    estimator, source = load_estimator(model_path, allow_version_mismatch=allow_version_mismatch)
    found = served_globals(estimator, model_path)
    columns, rows, y_text = read_reference(data_path, target)
    names = feature_order(estimator, columns, target)
    one_text = fitted_on_one_text_column(estimator)
    if one_text and len(names) != 1:
        raise PackagingError(f"the model takes one column of text; {data_path} has "
                             f"{len(names)} columns besides the target: "
                             + ", ".join(names) + _target_hint(names, target))
    declared = set(text) | set(categorical)
    unknown = declared - set(names)
    if unknown:
        raise PackagingError("--text/--categorical name columns the model does not take: "
                             + ", ".join(sorted(unknown)))
    text_kind = frozenset((text_columns(estimator, names) | set(text)) - set(categorical))
    X, types, evaluation, training_data = rows_to_score(
        columns, rows, y_text, names, data_path=data_path, target=target, held_out=held_out,
        split=split, seed=seed, stratify=stratify, text=text_kind)
    warn_free_text(X, names, types, declared)
    card = read_card(card_path, names)
    features = [{"name": n, "type": t} for n, t in zip(names, types)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if one_text:
            spec, requires = frames.input_spec(features, frames.COLUMN, "fitted on one column "
                                               "of text (a list of strings)"), []
        else:
            spec, requires = choose_input(estimator, X, features, found)
            check_new_text(estimator, X, features, spec, set(text) - text_columns(estimator, names))
            optional = optional_features(estimator, X, features, spec, path=data_path,
                                         columns=columns, rows=rows)
            for feature in features:
                if feature["name"] in optional:
                    feature["optional"] = True
            spec = {**frames.input_spec(features, spec["container"], spec["reason"]), **{
                k: v for k, v in spec.items() if k not in ("columns", "dtypes")}}
        for rows_of in (X, evaluation.X):
            predicted = _predict(estimator, frames.model_input(rows_of, {"input": spec}))
            if isinstance(predicted, Exception):
                sent = "a pandas DataFrame" if spec["container"] == frames.DATAFRAME \
                    else "a NumPy array in feature order"
                raise PackagingError("the model cannot predict the reference rows as the "
                                     f"function sends them ({sent}): "
                                     f"{type(predicted).__name__}: {predicted}")
        manifest = _manifest(estimator, X, features, names, evaluation, spec,
                             name=name or model_path.stem, version=version,
                             description=description, positive=positive, card=card,
                             extra={"input": spec, "requires": requires, "source": source,
                                    "training_data": training_data})
    return estimator, manifest, frames.model_input(evaluation.X, {"input": spec})


def _manifest(estimator, X, features, names, evaluation: Evaluation, spec, *, name, version,
              description, positive, card, extra) -> dict:
    """Return the manifest: the schema from the reference (training) rows X, the examples,
    importances and metrics from the evaluation rows."""
    classification = is_classifier(estimator)
    types = [f["type"] for f in features]
    one_column = spec["container"] == frames.COLUMN  # no 2-D input to permute
    Xe = evaluation.X
    Xm = frames.model_input(Xe, {"input": spec})
    y = target_values(estimator, evaluation.y_text) if evaluation.y_text is not None else None
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
        **({"classes": list(estimator.classes_)} if classification else {}),
        "features": [{**f, **({"optional": True} if given.get("optional") else {})}
                     for f, given in zip(modelcard.feature_schema(
                         X, names, types, meta=card.pop("features", None),
                         importances=[1.0] if one_column else
                         modelcard.importances_of(estimator, Xm, y, names)), features)],
        "examples": modelcard.examples_of(estimator, Xe, y, names, types, classification,
                                          model_input=Xm),
        **extra,
        **card,
    }
    if classification:
        manifest["positive_label"] = positive
    if y is not None:
        scores = (modelcard.classification_metrics(estimator, Xm, y, positive_value)
                  if classification else modelcard.regression_metrics(estimator, Xm, y))
        manifest["metrics"] = {"data": evaluation.data, "held_out": evaluation.held_out,
                               **scores}
    return manifest


def write_whole(out_dir: Path, estimator, manifest: dict) -> dict:
    """Write the model directory whole or not at all: into a new directory beside out_dir,
    moved into place once complete (an existing out_dir gets the new pickle, then the new
    manifest; its other files are left alone). Return the written manifest."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        written = modelcard.write_model_dir(scratch, estimator, manifest)
        try:
            os.rename(scratch, out_dir)  # out_dir absent or empty: one atomic step
        except OSError:
            if not out_dir.is_dir():
                raise PackagingError(f"cannot write {out_dir}: it exists and is not a "
                                     "directory") from None
            for part in (written["artifact"]["file"], modelcard.MANIFEST_FILE):
                os.replace(scratch / part, out_dir / part)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="the fitted estimator, saved with pickle.dump "
                        "or joblib.dump (compressed or not)")
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
    parser.add_argument("--allow-version-mismatch", action="store_true",
                        help="serve a model saved by another scikit-learn version (recorded in "
                             "the manifest's source)")
    held = parser.add_mutually_exclusive_group()
    held.add_argument("--held-out", type=Path, metavar="CSV", help="rows the model never saw in "
                      "training, with the same columns and the target: the card's metrics, "
                      "examples and track record come from them")
    held.add_argument("--split", type=float, metavar="FRACTION", help="the share of the "
                      "reference rows held out from training, chosen as train_test_split("
                      "test_size=FRACTION, random_state=SEED) chose them")
    parser.add_argument("--seed", type=int, default=0, help="with --split: its random_state")
    parser.add_argument("--stratify", action="store_true", help="with --split: it was "
                        "stratified by the target")
    parser.add_argument("--text", action="append", default=[], metavar="COLUMN",
                        help="serve this string column as free text (any string up to a "
                             "length), not as a category; repeat for more columns")
    parser.add_argument("--categorical", action="append", default=[], metavar="COLUMN",
                        help="serve this string column as a category (only values seen in "
                             "the reference data), without the free-text warning")
    args = parser.parse_args(argv)
    try:
        manifest = package(args.model, args.data, args.out, target=args.target, name=args.name,
                           version=args.version, description=args.description,
                           positive=args.positive, card_path=args.card,
                           allow_version_mismatch=args.allow_version_mismatch,
                           held_out=args.held_out, split=args.split, seed=args.seed,
                           stratify=args.stratify, text=tuple(args.text),
                           categorical=tuple(args.categorical))
    except PackagingError as exc:
        print(f"package_model: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/ ({manifest['task']}, {len(manifest['features'])} features); "
          f"serve it with: MODEL_DIR={args.out} bash scripts/run.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
