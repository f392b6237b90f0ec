"""Explanations for tree ensembles (and for a single tree after a Pipeline's head).

Owns: the path method (Saabas) summed over the trees of a random forest, extra trees,
gradient boosting or histogram gradient boosting (numeric or categorical splits, identity or
logit link).
Each node's value is the mean of its leaves' values weighted by their training samples (so
the root's is the tree's mean answer over its training rows); along each row's decision
path, the change of the node value at each split is credited to the split's feature, and
the trees are combined as the ensemble combines them. `base_value` (the ensemble's mean raw
score over its training rows) plus the contributions equals the prediction: a probability,
a value, or boosting's log-odds. This is what `shap.TreeExplainer(model).shap_values(X,
approximate=True)` computes. A Pipeline's head is folded (explain_fold.py): each encoded
column's contribution goes to the input it comes from. Other estimators: None.
"""
from __future__ import annotations

import threading
import warnings
import weakref

import numpy as np

from .explain_fold import explanations, fold, sklearn_kind, split, targets

# Known by name, so that importing this module imports nothing of scikit-learn (cold start).
FORESTS = {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
           "ExtraTreesRegressor"}
SINGLE_TREES = {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
                "ExtraTreeRegressor"}
BOOSTING = {"GradientBoostingClassifier", "GradientBoostingRegressor"}
HIST_BOOSTING = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}
# Regression losses whose prediction is the raw score itself (identity link).
IDENTITY_LOSSES = {"squared_error", "absolute_error", "quantile", "huber"}

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def explain(estimator, X, names: list[str], predicted: list) -> list[dict] | None:
    """Given an estimator, its input rows and predictions, return one explanation per row,
    or None when this module does not explain that kind of estimator."""
    head, final = split(estimator)
    kind = sklearn_kind(final)
    if not (kind in FORESTS | BOOSTING or kind in SINGLE_TREES and head is not None
            or _hist_explainable(final)) or getattr(final, "n_outputs_", 1) != 1:
        return None
    folded = fold(estimator, len(names))
    sources = None if folded is None else folded.sources()
    if sources is None or None in sources:
        return None
    Z = given = X if head is None else head.transform(X)  # what the final step is given
    inner = getattr(final, "_preprocessor", None) if kind in HIST_BOOSTING else None
    if inner is not None:  # histogram boosting's own encoder: categories first, as codes
        order = _preprocessed_order(inner)
        if order is None or sorted(order) != list(range(len(sources))):
            return None
        Z, sources = inner.transform(Z), [sources[j] for j in order]
    Z = np.asarray(Z.toarray() if hasattr(Z, "toarray") else Z, dtype=float)
    if Z.ndim != 2 or Z.shape[1] != len(sources):
        return None
    with warnings.catch_warnings():
        # Z is in the fitted column order; a model fitted on a DataFrame warns on arrays.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if kind in FORESTS | SINGLE_TREES:
            target, base, parts = _forest(final, Z, predicted)
        else:
            target, base, parts = _boosting(final, Z, predicted, given)
    folded_parts = np.zeros((len(Z), len(names)))
    columns = np.flatnonzero(np.asarray(sources) >= 0)  # a constant column is never split on
    np.add.at(folded_parts.T, np.asarray(sources)[columns], parts[:, columns].T)
    return explanations("tree_paths", target, predicted, base, folded_parts, names, X)


class TreeTable:
    """One tree's part of every explanation, worked out once: per output, the root's value
    and each node's change from its parent (`delta`, 0 at the root), credited to the parent's
    split feature (`credited`): a row's contributions are the sums of its path's changes."""

    def __init__(self, left, right, feature, weight, leaf_values):
        values = _mean_of_leaves(left, right, weight, leaf_values)
        parent = np.zeros(len(left), dtype=np.int64)  # the root is its own parent: no change
        inner = np.flatnonzero(left >= 0)
        parent[left[inner]] = inner
        parent[right[inner]] = inner
        self.root = values[0]
        self.delta = (values - values[parent]).T  # outputs x nodes
        self.credited = np.maximum(feature[parent], 0)


def _mean_of_leaves(left, right, weight, leaf_values) -> np.ndarray:
    """Given a tree's children (-1 at leaves), node weights and the leaves' values (nodes x
    outputs), return every node's value: an inner node's is the weighted mean of its leaves."""
    level = np.array([0])
    levels = []
    while len(level):
        inner = level[left[level] >= 0]
        levels.append(inner)
        level = np.concatenate([left[inner], right[inner]])
    values = np.array(leaf_values, dtype=float)
    for inner in reversed(levels):  # the deepest first: children before their parents
        wl, wr = weight[left[inner]][:, None], weight[right[inner]][:, None]
        wl, wr = np.where(wl + wr > 0, wl, 1.0), np.where(wl + wr > 0, wr, 1.0)  # no weight: even
        values[inner] = (wl * values[left[inner]] + wr * values[right[inner]]) / (wl + wr)
    return values


def _table(key, build) -> TreeTable:
    """Return the table kept for a tree (or a histogram predictor), built on first use."""
    found = _cache.get(key)
    if found is None:
        found = build()
        with _cache_lock:
            _cache[key] = found
    return found


def _sklearn_table(tree_model, *, shares: bool) -> TreeTable:
    def build():
        tree = tree_model.tree_
        value = tree.value[:, 0, :]
        if shares:  # a classifier's node value: the share of each class
            value = value / value.sum(axis=1, keepdims=True)
        return TreeTable(tree.children_left, tree.children_right, tree.feature,
                         tree.weighted_n_node_samples, value)
    return _table(tree_model, build)


def _sklearn_path(tree_model, Z32: np.ndarray, rows: np.ndarray):
    """Return the (row, node) pairs of these rows' decision paths: the tree's own walk, on
    rows validated once for all trees (float32, as its checks would cast them)."""
    path = tree_model.tree_.decision_path(Z32)
    return np.repeat(rows, np.diff(path.indptr)), path.indices


def _paths(parts, base, table: TreeTable, visits, rows: np.ndarray, output: int, scale=1.0):
    """Add to these rows the tree's root value and their contributions along their decision
    paths (visits: the (row, node) pairs of their paths), for one of the tree's outputs."""
    row, node = visits
    n, width = parts.shape
    base[rows] += scale * table.root[output]
    parts += scale * np.bincount(row * width + table.credited[node],
                                 weights=table.delta[output][node],
                                 minlength=n * width).reshape(n, width)


def _forest(forest, Z, predicted):
    """Path contributions averaged over the trees, as the forest averages their predictions
    (a single tree: a forest of one)."""
    classes = getattr(forest, "classes_", None)
    trees = getattr(forest, "estimators_", [forest])
    target = targets(classes, 0, predicted, space="probability")
    base = np.zeros(len(Z))
    parts = np.zeros(Z.shape)
    Z32 = np.ascontiguousarray(Z, dtype=np.float32)
    groups = [(c, np.flatnonzero(target.k == c)) for c in np.unique(target.k)]
    for tree_model in trees:
        table = _sklearn_table(tree_model, shares=classes is not None)
        row, node = _sklearn_path(tree_model, Z32, np.arange(len(Z)))
        for c, rows in groups:
            mine = target.k[row] == c
            _paths(parts, base, table, (row[mine], node[mine]), rows, c)
    return target, base / len(trees), parts / len(trees)


def _boosting(model, Z, predicted, given):
    """Path contributions of every tree (walked on Z, the columns the trees split), in the raw
    score space of the model given `given`; the base value is the initial estimate (what the
    trees do not explain) plus the trees' root values."""
    classes = getattr(model, "classes_", None)
    hist = sklearn_kind(model) in HIST_BOOSTING
    stages = model._predictors if hist else model.estimators_  # HGB's trees: no public accessor
    width = len(stages[0])
    target = targets(classes, width, predicted, space="log-odds")
    raw = model.decision_function(given) if classes is not None else model.predict(given)
    raw = np.asarray(raw, dtype=float).reshape(len(Z), -1)
    scale = 1.0 if hist else model.learning_rate
    # Which categories each categorical column saw in training (an unseen one counts as missing).
    known = model._bin_mapper.make_known_categories_bitsets() if hist else None
    base = np.zeros(len(Z))
    parts = np.zeros(Z.shape)
    for c in range(width):
        rows = np.flatnonzero(target.k == c)
        if not len(rows):
            continue
        Zc = Z[rows] if hist else np.ascontiguousarray(Z[rows], dtype=np.float32)
        for stage in stages:
            if hist:
                table, visits = _hist_table(stage[c]), _hist_path(stage[c], Zc, rows, known)
            else:
                table = _sklearn_table(stage[c], shares=False)
                visits = _sklearn_path(stage[c], Zc, rows)
            _paths(parts, base, table, visits, rows, 0, scale)
    # What the trees do not explain is the initial estimate (e.g. the prior's log-odds).
    init = raw[np.arange(len(Z)), target.k] - base - parts.sum(axis=1)
    return target, target.sign * (init + base), target.sign[:, None] * parts


def _hist_explainable(model) -> bool:
    """Return whether a histogram gradient boosting model's trees can be walked here: a raw
    score that is the prediction's space (a classifier's log-odds, or an identity link)."""
    if sklearn_kind(model) not in HIST_BOOSTING or not getattr(model, "_predictors", None):
        return False  # its trees (no public accessor) are there once it is fitted
    return hasattr(model, "classes_") or model.loss in IDENTITY_LOSSES


def _preprocessed_order(ct) -> list[int] | None:
    """For histogram boosting's own ColumnTransformer, return the input column of each column
    it outputs (its categorical columns first), or None if that cannot be told."""
    out: list = [None] * sum(s.stop - s.start for s in ct.output_indices_.values())
    for name, _, selection in ct.transformers_:
        where = ct.output_indices_.get(name, slice(0, 0))
        chosen = np.flatnonzero(selection).tolist() if np.asarray(selection).dtype == bool \
            else None
        if where.stop == where.start:
            continue
        if chosen is None or len(chosen) != where.stop - where.start:
            return None
        out[where] = chosen
    return out


def _hist_table(predictor) -> TreeTable:
    def build():
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        feature = np.where(leaf, -1, nodes["feature_idx"].astype(np.int64))
        return TreeTable(left, right, feature, nodes["count"].astype(float),
                         nodes["value"].astype(float)[:, None])
    return _table(predictor, build)


def _in_bitsets(bitsets: np.ndarray, which: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Return whether each code is in its bitset (256 bits as 8 words, as scikit-learn's)."""
    return ((bitsets[which, code >> 5] >> (code & 31).astype(np.uint32)) & 1).astype(bool)


def _hist_path(predictor, Z: np.ndarray, rows: np.ndarray, known):
    """Walk these rows down one histogram tree as its predictor does (numeric thresholds,
    categories in bitsets, missing and unseen values to the side the split learned); return
    the (row, node) pairs of their paths."""
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    node = np.zeros(len(Z), dtype=np.int64)
    seen_row, seen_node = [rows], [node.copy()]
    walking = np.flatnonzero(~leaf[node])
    while len(walking):
        at = node[walking]
        feature = nodes["feature_idx"][at].astype(np.int64)
        x = Z[walking, feature]
        missing_left = nodes["missing_go_to_left"][at].astype(bool)
        left = x <= nodes["num_threshold"][at]
        categorical = nodes["is_categorical"][at].astype(bool) & ~np.isnan(x)
        if categorical.any():
            xs = x[categorical]
            code = np.where(xs >= 0, xs, 0).astype(np.int64) & 255  # as the predictor's uint8
            listed = _in_bitsets(predictor.raw_left_cat_bitsets,
                                 nodes["bitset_idx"][at][categorical].astype(np.int64), code)
            seen = _in_bitsets(known[0], known[1][feature[categorical]].astype(np.int64), code)
            left[categorical] = np.where((xs >= 0) & (listed | seen), listed,
                                         missing_left[categorical])
        left = np.where(np.isnan(x), missing_left, left)
        node[walking] = np.where(left, nodes["left"][at], nodes["right"][at])
        seen_row.append(rows[walking])
        seen_node.append(node[walking])
        walking = walking[~leaf[node[walking]]]
    return np.concatenate(seen_row), np.concatenate(seen_node)
