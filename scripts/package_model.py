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
import re
import sys
import warnings
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
from predict.unpickle import ForbiddenGlobal, RestrictedUnpickler, check_global  # noqa: E402


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


# joblib's own wrappers of the arrays it stores after the pickle; the rest goes through the
# function's allow list.
JOBLIB_GLOBALS = {("joblib.numpy_pickle", "NumpyArrayWrapper")}


class _RestrictedJoblibUnpickler(joblib.numpy_pickle.NumpyUnpickler):
    """joblib's unpickler (it reads plain pickles too) with the function's allow list."""

    trusted: frozenset = frozenset()

    def find_class(self, module: str, name: str):
        if (module, name) in JOBLIB_GLOBALS:
            return super().find_class(module, name)
        return check_global(module, name, extra=self.trusted)


def _restricted_joblib_load(data: bytes, trusted: frozenset):
    """Given a pickle or joblib file's bytes (compressed or not), return the object, refusing
    any global outside the allow list before it is imported (ForbiddenGlobal)."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    with _validate_fileobject_and_memmap(io.BytesIO(data), "", None) as (fobj, _):
        unpickler = _RestrictedJoblibUnpickler("", fobj, ensure_native_byte_order=True)
        unpickler.trusted = frozenset(trusted)
        return unpickler.load()


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


class _Recorder(RestrictedUnpickler):
    """The function's restricted unpickler, noting every global (module, name) it is asked for."""

    def __init__(self, file, *, extra: frozenset[str]):
        super().__init__(file, extra=extra)
        self.found: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str):
        self.found.add((module, name))
        return super().find_class(module, name)


def served_globals(estimator, path: Path) -> set[tuple[str, str]]:
    """Return the (module, name) globals the estimator's served pickle names, unpickling it as
    the function will; PackagingError for a pickle the function would refuse."""
    recorder = _Recorder(io.BytesIO(modelcard.stable_pickle(estimator)),
                         extra=frozenset(from_env().trusted_globals))
    try:
        recorder.load()
    except ForbiddenGlobal as exc:
        raise PackagingError(_why_forbidden(path, exc)) from None
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


def package(model_path: Path, data_path: Path, out_dir: Path, *, target: str | None = None,
            name: str | None = None, version: str = "1.0.0", description: str = "",
            positive: str | None = None, card_path: Path | None = None,
            allow_version_mismatch: bool = False, text: tuple[str, ...] = (),
            categorical: tuple[str, ...] = ()) -> dict:
    """Package a pickled (or joblib) estimator and its reference CSV into out_dir; return the
    manifest."""
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
    X, types = build_matrix(columns, rows, names, text=text_kind)
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
        Xm = frames.model_input(X, {"input": spec})
        predicted = _predict(estimator, Xm)
        if isinstance(predicted, Exception):
            sent = "a pandas DataFrame" if spec["container"] == frames.DATAFRAME \
                else "a NumPy array in feature order"
            raise PackagingError("the model cannot predict the reference rows as the function "
                                 f"sends them ({sent}): {type(predicted).__name__}: {predicted}")
        return _manifest(estimator, X, Xm, features, names, y_text, out_dir,
                         name=name or model_path.stem, version=version, description=description,
                         positive=positive, data_name=data_path.name, card=card,
                         extra={"input": spec, "requires": requires, "source": source})


def _manifest(estimator, X, Xm, features, names, y_text, out_dir, *, name, version,
              description, positive, data_name, card, extra) -> dict:
    classification = is_classifier(estimator)
    types = [f["type"] for f in features]
    one_column = extra["input"]["container"] == frames.COLUMN  # no 2-D input to permute
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
        "features": [{**f, **({"optional": True} if given.get("optional") else {})}
                     for f, given in zip(modelcard.feature_schema(
                         X, names, types, meta=card.pop("features", None),
                         importances=[1.0] if one_column else
                         modelcard.importances_of(estimator, Xm, y, names)), features)],
        "examples": modelcard.examples_of(estimator, X, y, names, types, classification,
                                          model_input=Xm),
        "training_data": {"reference": data_name, "rows": len(X)},
        **extra,
        **card,
    }
    if classification:
        manifest["positive_label"] = positive
    if y is not None:
        scores = (modelcard.classification_metrics(estimator, Xm, y, positive_value)
                  if classification else modelcard.regression_metrics(estimator, Xm, y))
        manifest["metrics"] = {"data": f"the reference data {data_name}; if the model was "
                                       "trained on it, these scores are optimistic", **scores}
    return modelcard.write_model_dir(out_dir, estimator, manifest)


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
                           text=tuple(args.text), categorical=tuple(args.categorical))
    except PackagingError as exc:
        print(f"package_model: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/ ({manifest['task']}, {len(manifest['features'])} features); "
          f"serve it with: MODEL_DIR={args.out} bash scripts/run.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
