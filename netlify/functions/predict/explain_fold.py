"""What the columns a model's final step sees are, in terms of the inputs people send.

Owns: the fold of a Pipeline's head, worked out once per fitted model. Each column the final
step sees is either *encoded* (computed by fitted steps from one input alone: a one-hot
encoder, an imputer, any transformer of a single column, or the input itself) or an *affine*
function of encoded columns (scalers, PCA, truncated SVD, polynomial features of degree 1,
the identity). A tree ensemble needs only the input each column comes from; a linear model
needs the affine map, which composed with its coefficients gives each input an exact part
of the score. Anything else (a column mixing inputs in another way): no fold, no explanation.
Also owns the rows an explanation is for (which score, with which sign) and the one helper
that writes contributions.
"""
from __future__ import annotations

import threading
import weakref
from typing import NamedTuple

import numpy as np

# Steps whose output is an affine function of their input (probed, not re-derived: the
# fitted step's own transform gives the map). Known by name: nothing of scikit-learn is
# imported at module import (cold start).
AFFINE = {"StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "PCA",
          "IncrementalPCA", "TruncatedSVD", "PolynomialFeatures", "FunctionTransformer"}

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def sklearn_kind(obj) -> str:
    """Return the class name of a scikit-learn object, or '' for anything else."""
    return type(obj).__name__ if type(obj).__module__.startswith("sklearn.") else ""


class Group(NamedTuple):
    """Columns computed by fitted steps from some inputs (None: the whole input as given; an
    int: that one input as a 1-D column, as a ColumnTransformer passes a scalar selection)."""
    inputs: tuple[int, ...] | int | None
    steps: tuple


class Raw(NamedTuple):
    source: int  # an input column, untouched


class Encoded(NamedTuple):
    group: int  # index into Fold.groups
    index: int  # column of that group's output
    source: int  # the one input it depends on


class Affine(NamedTuple):
    terms: dict  # Encoded -> coefficient
    offset: float


class Builder:
    """The groups found while walking a head: what computes each encoded column."""

    def __init__(self):
        self.groups: list[Group] = []
        self.widths: list[int] = []  # per group, its number of output columns

    def add(self, group: Group, width: int) -> int:
        self.groups.append(group)
        self.widths.append(width)
        return len(self.groups) - 1

    def no_raw(self, columns: list) -> list:
        """Return the columns with each untouched input as an encoded column (its own value)."""
        raw = [c for c in columns if isinstance(c, Raw)]
        if not raw:
            return columns
        g = self.add(Group(tuple(c.source for c in raw), ()), len(raw))
        as_encoded = {c: Encoded(g, i, c.source) for i, c in enumerate(raw)}
        return [as_encoded.get(c, c) if isinstance(c, Raw) else c for c in columns]


def _as_terms(column) -> Affine:
    return column if isinstance(column, Affine) else Affine({column: 1.0}, 0.0)


class Fold:
    """The head's output columns in terms of the inputs: see the module docstring. `matrix`
    and `offsets` give each output column as an affine function of the atoms (the encoded
    columns), each atom depending on one input (`atom_sources`)."""

    def __init__(self, columns: list, builder: Builder):
        self.groups = builder.groups
        self.columns = [_as_terms(c) for c in builder.no_raw(columns)]
        self.atoms = sorted({e for c in self.columns for e in c.terms})
        at = {e: a for a, e in enumerate(self.atoms)}
        self.matrix = np.zeros((len(self.columns), len(self.atoms)))
        for o, column in enumerate(self.columns):
            for e, coefficient in column.terms.items():
                self.matrix[o, at[e]] = coefficient
        self.offsets = np.array([c.offset for c in self.columns])
        self.atom_sources = np.array([e.source for e in self.atoms], dtype=int)

    def sources(self) -> list[int | None]:
        """Per output column, the input it comes from; -1 for a constant; None if several."""
        out = []
        for column in self.columns:
            found = {e.source for e, c in column.terms.items() if c != 0}
            out.append(found.pop() if len(found) == 1 else (-1 if not found else None))
        return out

    def values(self, X) -> np.ndarray:
        """Given the model's input rows, return each atom's value per row (n rows x atoms)."""
        out = np.zeros((_rows(X), len(self.atoms)))
        by_group: dict[int, list[int]] = {}
        for a, e in enumerate(self.atoms):
            by_group.setdefault(e.group, []).append(a)
        for g, atoms in by_group.items():
            Z = _run(self.groups[g], X)
            out[:, atoms] = Z[:, [self.atoms[a].index for a in atoms]]
        return out


def _rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _select(X, inputs):
    if inputs is None:
        return X
    if hasattr(X, "iloc"):
        return X.iloc[:, inputs if isinstance(inputs, int) else list(inputs)]
    X = np.asarray(X)
    return X[:, inputs] if isinstance(inputs, int) else X[:, list(inputs)]


def _dense(Z) -> np.ndarray:
    Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
    return np.asarray(Z, dtype=float).reshape(len(Z), -1)


def _run(group: Group, X) -> np.ndarray:
    Z = _select(X, group.inputs)
    for step in group.steps:
        Z = step.transform(Z)
    return _dense(Z)


def split(estimator):
    """Return (head, final step) of a Pipeline, or (None, estimator)."""
    steps = getattr(estimator, "steps", None)
    return (estimator[:-1], steps[-1][1]) if steps else (None, estimator)


def fold(estimator, n_inputs: int) -> Fold | None:
    """Given a model (a Pipeline or a bare estimator) and its number of inputs, return the
    fold of what its final step sees, or None when a column cannot be told apart by input or
    is not affine in them; worked out once, kept while the model lives."""
    head, _ = split(estimator)
    if head is None:
        return Fold([Raw(j) for j in range(n_inputs)], Builder())
    with _cache_lock:
        if estimator in _cache:
            return _cache[estimator]
    builder = Builder()
    if n_inputs == 1:  # one input (e.g. a text): every column comes from it, whatever the steps
        width = _width(head)
        steps = tuple(s for _, s in head.steps if not isinstance(s, str) and s is not None)
        g = None if width is None else builder.add(Group(None, steps), width)
        columns = None if g is None else [Encoded(g, i, 0) for i in range(width)]
    else:
        columns = _step(head, [Raw(j) for j in range(n_inputs)], builder)
    found = None if columns is None else Fold(columns, builder)
    with _cache_lock:
        _cache[estimator] = found
    return found


def _width(step) -> int | None:
    try:
        return len(step.get_feature_names_out())
    except Exception:  # a step that cannot name its outputs: its width is not known
        return None


def _step(step, columns: list, builder: Builder) -> list | None:
    """Given a fitted step and what its input columns are, return what its outputs are."""
    if step is None or isinstance(step, str):  # "passthrough"
        return columns if step in (None, "passthrough") else None
    if hasattr(step, "steps"):
        for _, inner in step.steps:
            columns = _step(inner, columns, builder) if columns is not None else None
        return columns
    if hasattr(step, "transformers_") and hasattr(step, "output_indices_"):
        return _column_transformer(step, columns, builder)
    if len(columns) != getattr(step, "n_features_in_", len(columns)):
        return None
    affine = _affine_map(step, len(columns))
    if affine is not None:
        return _apply(*affine, builder.no_raw(columns))
    return _encode(step, columns, _encoder_sources(step, len(columns)), builder)


def _affine_map(step, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (A, b) with step.transform(x) == A @ x + b for a step known to be affine."""
    kind = sklearn_kind(step)
    if kind not in AFFINE or (kind == "MinMaxScaler" and step.clip) or \
            (kind == "PolynomialFeatures" and step.powers_.sum(axis=1).max() > 1) or \
            (kind == "FunctionTransformer" and step.func is not None):
        return None
    out = _dense(step.transform(np.vstack([np.zeros(n), np.eye(n)])))
    return (out[1:] - out[0]).T, out[0]


def _apply(A: np.ndarray, b: np.ndarray, columns: list) -> list[Affine]:
    terms = [_as_terms(c) for c in columns]
    out = []
    for row, offset in zip(A, b):
        combined: dict = {}
        for k in np.flatnonzero(row):
            for e, c in terms[k].terms.items():
                combined[e] = combined.get(e, 0.0) + row[k] * c
        out.append(Affine(combined, float(offset + row @ [t.offset for t in terms])))
    return out


# Steps that transform each input column on its own, one output column for each.
ONE_FOR_ONE = {"OrdinalEncoder", "QuantileTransformer", "PowerTransformer", "Binarizer"}


def _encoder_sources(step, n: int) -> list[int] | None:
    """For a step that encodes each input column on its own, return the input position of each
    output column; None for any other step."""
    kind = sklearn_kind(step)
    if kind == "OneHotEncoder":
        counts = getattr(step, "_n_features_outs", None)
        return None if counts is None else [i for i, c in enumerate(counts) for _ in range(c)]
    if kind == "SimpleImputer":
        kept = ~np.isnan(np.asarray(step.statistics_, dtype=float)) \
            if not step.keep_empty_features and step.statistics_.dtype.kind == "f" \
            else np.ones(n, dtype=bool)
        flags = step.indicator_.features_.tolist() if step.add_indicator else []
        return np.flatnonzero(kept).tolist() + flags  # imputed columns, then missing flags
    if kind == "KBinsDiscretizer":
        each = step.n_bins_ if step.encode != "ordinal" else np.ones(n, dtype=int)
        return [i for i, c in enumerate(each) for _ in range(int(c))]
    if kind == "SplineTransformer":
        return [i for i in range(n) for _ in range(step.n_features_out_ // n)]
    if kind in ONE_FOR_ONE:
        return list(range(n))
    if n == 1:
        width = _width(step)
        return None if width is None else [0] * width
    return None


def _encode(step, columns: list, sources: list[int] | None, builder: Builder) -> list | None:
    if sources is None:
        return None
    if all(isinstance(c, Raw) for c in columns):
        group = Group(tuple(c.source for c in columns), (step,))
    else:
        g = columns[0].group if isinstance(columns[0], Encoded) else None
        if g is None or columns != [Encoded(g, i, c.source) for i, c in enumerate(columns)] \
                or len(columns) != builder.widths[g]:
            return None  # encoding part of what earlier steps made: not followed here
        group = Group(builder.groups[g].inputs, builder.groups[g].steps + (step,))
    g = builder.add(group, len(sources))
    return [Encoded(g, o, columns[i].source) for o, i in enumerate(sources)]


def _input_indices(ct, selection) -> list[int] | None:
    names = [str(n) for n in getattr(ct, "feature_names_in_", [])]
    if isinstance(selection, slice):
        return list(range(ct.n_features_in_))[selection]
    items = [selection] if isinstance(selection, (str, int, np.integer)) else list(selection)
    if items and isinstance(items[0], (bool, np.bool_)):
        return np.flatnonzero(items).tolist()
    if all(isinstance(c, str) for c in items):
        return [names.index(c) for c in items] if set(items) <= set(names) else None
    if all(isinstance(c, (int, np.integer)) for c in items):
        return [int(c) for c in items]
    return None  # a callable or a selector: not told here


def _column_transformer(ct, columns: list, builder: Builder) -> list | None:
    width = sum(s.stop - s.start for s in ct.output_indices_.values())
    if len(columns) != ct.n_features_in_:
        return None
    out: list = [None] * width
    for name, transformer, selection in ct.transformers_:
        where = ct.output_indices_.get(name, slice(0, 0))
        if where.stop == where.start:
            continue
        inputs = _input_indices(ct, selection)
        if inputs is None:  # a selector (make_column_selector): the columns it chose at fit
            inputs = getattr(ct, "_transformer_to_input_indices", {}).get(name)
        if inputs is None:
            return None
        chosen = [columns[i] for i in inputs]
        if isinstance(selection, (str, int, np.integer)) and isinstance(chosen[0], Raw):
            # One column, passed 1-D (e.g. text to a vectorizer): any step, one input.
            g = builder.add(Group(chosen[0].source, (transformer,)), where.stop - where.start)
            made = [Encoded(g, o, chosen[0].source) for o in range(where.stop - where.start)]
        else:
            made = _step(transformer, chosen, builder)
        if made is None or len(made) != where.stop - where.start:
            return None
        out[where] = made
    return out


class Target(NamedTuple):
    """Per row, which of the model's scores is explained, with which sign, in what space."""
    k: np.ndarray
    sign: np.ndarray
    space: str


def targets(classes, n_scores: int, predicted: list, *, space: str) -> Target:
    """Given the model's classes (None for a regressor), its number of raw scores and the
    predicted labels, return the score each row's explanation is for: a regressor's value;
    a binary model's one score, turned towards the predicted label; or the label's own."""
    n = len(predicted)
    if classes is None:
        return Target(np.zeros(n, int), np.ones(n), "value")
    if n_scores == 1:  # binary: one score, positive for classes_[1]
        sign = np.where(np.asarray(predicted, dtype=object) == classes[1], 1.0, -1.0)
        return Target(np.zeros(n, int), sign, space)
    index = {c: k for k, c in enumerate(classes.tolist())}
    return Target(np.array([index[label] for label in predicted]), np.ones(n), space)


def contribution_list(names: list[str], values: np.ndarray, shown: list | None = None) -> list:
    """Given per-feature contributions of one row (and the row's value of each categorical
    feature, else None), return them largest first, zeros left out."""
    pairs = [(j, v) for j, v in enumerate(values.tolist()) if v != 0]
    pairs.sort(key=lambda p: -abs(p[1]))  # stable: equal sizes keep the feature order
    out = []
    for j, v in pairs:
        item = {"feature": names[j], "contribution": v}
        if shown is not None and shown[j] is not None:
            item["value"] = shown[j]
        out.append(item)
    return out


def categories_shown(X, n_inputs: int) -> list[list | None]:
    """Return, per row, the value of each input that is not a number (a category or a text,
    named beside its contribution), else None."""
    rows = X.to_numpy(dtype=object) if hasattr(X, "to_numpy") else np.asarray(X, dtype=object)
    rows = rows.reshape(len(rows), -1)
    if rows.shape[1] != n_inputs:
        return [None] * len(rows)
    keep = [j for j in range(n_inputs)
            if any(isinstance(v, str) for v in rows[:, j].tolist())]
    if not keep:
        return [None] * len(rows)
    out = []
    for row in rows.tolist():
        out.append([row[j] if j in keep and isinstance(row[j], str) else None
                    for j in range(n_inputs)])
    return out


def explanations(method: str, target: Target, predicted: list, base: np.ndarray,
                 parts: np.ndarray, names: list[str], X) -> list[dict]:
    """Given per-row base values and per-input contributions, return one explanation per row."""
    shown = categories_shown(X, len(names))
    return [{"method": method, "space": target.space, "target": label,
             "base_value": float(base[i]),
             "contributions": contribution_list(names, parts[i], shown[i])}
            for i, label in enumerate(predicted)]
