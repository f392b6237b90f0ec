"""Explanations for tree ensembles, and for pipelines whose encoded columns fold back to inputs.

Owns: the path method (Saabas) summed over the trees of a random forest, extra trees or
gradient boosting and histogram gradient boosting (numeric splits, identity or logit link):
along each tree's decision path, the change of the node value at each split is credited to
the split's feature, and the trees are combined as the ensemble combines them, so
`base_value` plus the contributions equals the prediction (a probability, a value, or
boosting's log-odds). A Pipeline's head (e.g. a ColumnTransformer with a one-hot encoder)
maps each encoded column back to the input feature it came from, and each input feature
gets the sum of its columns' contributions. Other estimators: None (explain.py then answers
that there is no explanation).
"""
from __future__ import annotations

import warnings

import numpy as np

# Known by name, so that importing this module imports nothing of scikit-learn (cold start).
FORESTS = {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
           "ExtraTreesRegressor"}
BOOSTING = {"GradientBoostingClassifier", "GradientBoostingRegressor"}
HIST_BOOSTING = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}
# Regression losses whose prediction is the raw score itself (identity link).
IDENTITY_LOSSES = {"squared_error", "absolute_error", "quantile"}
# Steps that transform each column on its own: an encoded column stays with its input (an
# imputer may drop an empty column: the widths are checked).
COLUMNWISE = {"StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "SimpleImputer"}
ONE_HOT = "OneHotEncoder"


def _kind(obj) -> str:
    """Return the class name of a scikit-learn object, or '' for anything else."""
    return type(obj).__name__ if type(obj).__module__.startswith("sklearn.") else ""


def explain(estimator, X, names: list[str], predicted: list) -> list[dict] | None:
    """Given an estimator, its input rows and predictions, return one explanation per row,
    or None when this module does not explain that kind of estimator."""
    steps = getattr(estimator, "steps", None)
    head, final = (estimator[:-1], steps[-1][1]) if steps else (None, estimator)
    ensemble = _kind(final) in FORESTS | BOOSTING or _hist_explainable(final)
    if not ensemble and (head is None or not _linear(final)):
        return None
    sources = list(range(len(names))) if head is None else source_columns(head, len(names))
    if sources is None:
        return None
    Z = X if head is None else head.transform(X)
    Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z, dtype=float)
    if Z.shape[1] != len(sources):
        return None
    with warnings.catch_warnings():
        # Z is in the fitted column order; a model fitted on a DataFrame warns on arrays.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if _kind(final) in FORESTS:
            base, parts, space = _forest(final, Z, predicted)
        elif _kind(final) in BOOSTING:
            base, parts, space = _boosting(final, Z, predicted)
        elif _kind(final) in HIST_BOOSTING:
            base, parts, space = _hist_boosting(final, Z, predicted)
        else:
            base, parts, space = _linear_parts(final, Z, predicted)
    folded = np.zeros((len(Z), len(names)))
    np.add.at(folded.T, np.asarray(sources), parts.T)  # each encoded column to its input
    method = "tree_paths" if ensemble else "linear"
    return [{"method": method, "space": space, "target": label, "base_value": float(base[i]),
             "contributions": _contribution_list(names, folded[i])}
            for i, label in enumerate(predicted)]


def _linear(final) -> bool:
    return hasattr(final, "coef_") and hasattr(final, "intercept_")


def _contribution_list(names: list[str], values: np.ndarray) -> list[dict]:
    pairs = [(n, v) for n, v in zip(names, values.tolist()) if v != 0]
    pairs.sort(key=lambda p: -abs(p[1]))  # stable: equal sizes keep the feature order
    return [{"feature": n, "contribution": v} for n, v in pairs]


def _tree_parts(tree_model, Z: np.ndarray, values: np.ndarray) -> tuple[float, np.ndarray]:
    """Given one fitted tree and its node values (one per node), return the root value and each
    row's per-column contributions along its decision path."""
    tree = tree_model.tree_
    parent = np.full(tree.node_count, -1)
    inner = np.flatnonzero(tree.children_left >= 0)
    parent[tree.children_left[inner]] = inner
    parent[tree.children_right[inner]] = inner
    child = np.flatnonzero(parent >= 0)
    # Each non-root node: its value minus its parent's, credited to the parent's split feature.
    credit = np.zeros((tree.node_count, Z.shape[1]))
    credit[child, tree.feature[parent[child]]] = values[child] - values[parent[child]]
    return float(values[0]), np.asarray(tree_model.decision_path(Z) @ credit)


def _class_index(classes, predicted) -> np.ndarray:
    return np.array([int(np.flatnonzero(classes == label)[0]) for label in predicted])


def _forest(forest, Z, predicted):
    """Path contributions averaged over the trees, as the forest averages their predictions."""
    classes = getattr(forest, "classes_", None)
    k = _class_index(classes, predicted) if classes is not None else np.zeros(len(Z), int)
    base = np.zeros(len(Z))
    parts = np.zeros((len(Z), Z.shape[1]))
    for tree_model in forest.estimators_:
        value = tree_model.tree_.value[:, 0, :]
        if classes is not None:
            value = value / value.sum(axis=1, keepdims=True)
        for c in np.unique(k):
            rows = k == c
            root, contrib = _tree_parts(tree_model, Z[rows], value[:, c])
            base[rows] += root
            parts[rows] += contrib
    n = len(forest.estimators_)
    return base / n, parts / n, "probability" if classes is not None else "value"


def _boosting(model, Z, predicted):
    """Path contributions of every stage, scaled by the learning rate, in the raw score space."""
    classes = getattr(model, "classes_", None)
    stages = model.estimators_
    if classes is None:
        k, sign, space = np.zeros(len(Z), int), np.ones(len(Z)), "value"
        raw = model.predict(Z)[:, None]
    elif stages.shape[1] == 1:  # binary: one score, positive for classes_[1]
        k, space = np.zeros(len(Z), int), "log-odds"
        sign = np.where(np.asarray(predicted) == classes[1], 1.0, -1.0)
        raw = model.decision_function(Z)[:, None]
    else:
        k, sign, space = _class_index(classes, predicted), np.ones(len(Z)), "log-odds"
        raw = model.decision_function(Z)
    rate = model.learning_rate
    trees_sum = np.zeros((len(Z), stages.shape[1]))
    base = np.zeros(len(Z))
    parts = np.zeros((len(Z), Z.shape[1]))
    for c in range(stages.shape[1]):
        rows = k == c
        for tree_model in stages[:, c]:
            trees_sum[:, c] += rate * tree_model.predict(Z)
            if rows.any():
                root, contrib = _tree_parts(tree_model, Z[rows], tree_model.tree_.value[:, 0, 0])
                base[rows] += rate * root
                parts[rows] += rate * contrib
    # What the stages do not explain is the initial estimate (e.g. the prior's log-odds).
    init = (raw - trees_sum)[np.arange(len(Z)), k]
    return sign * (init + base), sign[:, None] * parts, space


def _hist_explainable(model) -> bool:
    """Return whether a histogram gradient boosting model's trees can be walked here: numeric
    splits only, no internal preprocessing, and a raw score that is the prediction's space."""
    predictors = getattr(model, "_predictors", None)  # its trees: no public accessor
    if _kind(model) not in HIST_BOOSTING or not predictors or \
            getattr(model, "_preprocessor", None) is not None:
        return False
    if not hasattr(model, "classes_") and model.loss not in IDENTITY_LOSSES:
        return False
    return not any(p.nodes["is_categorical"].any() for stage in predictors for p in stage)


def _hist_node_values(nodes) -> np.ndarray:
    """Return each node's value: a leaf's own, an inner node's the mean of its leaves weighted by
    their training counts (the stored inner values are unscaled, the root's unset)."""
    value = nodes["value"].astype(float)
    count = nodes["count"].astype(float)
    for node in np.argsort(-nodes["depth"], kind="stable"):
        if not nodes["is_leaf"][node]:
            left, right = nodes["left"][node], nodes["right"][node]
            value[node] = (count[left] * value[left] + count[right] * value[right]) / \
                (count[left] + count[right])
    return value


def _hist_tree_parts(nodes, Z: np.ndarray) -> tuple[float, np.ndarray]:
    """Walk every row down one histogram tree as its predictor does; return the root value and
    each row's per-column contributions."""
    value = _hist_node_values(nodes)
    leaf = nodes["is_leaf"].astype(bool)
    node = np.zeros(len(Z), dtype=int)
    parts = np.zeros(Z.shape)
    rows = np.flatnonzero(~leaf[node])
    while len(rows):
        at = node[rows]
        feature = nodes["feature_idx"][at].astype(int)
        x = Z[rows, feature]
        left = np.where(np.isnan(x), nodes["missing_go_to_left"][at].astype(bool),
                        x <= nodes["num_threshold"][at])
        nxt = np.where(left, nodes["left"][at], nodes["right"][at]).astype(int)
        parts[rows, feature] += value[nxt] - value[at]
        node[rows] = nxt
        rows = rows[~leaf[nxt]]
    return float(value[0]), parts


def _hist_boosting(model, Z, predicted):
    """Path contributions of every histogram tree, in the raw score space, from the baseline."""
    classes = getattr(model, "classes_", None)
    predictors = model._predictors
    width = len(predictors[0])
    if classes is None:
        k, sign, space = np.zeros(len(Z), int), np.ones(len(Z)), "value"
    elif width == 1:  # binary: one score, positive for classes_[1]
        k, space = np.zeros(len(Z), int), "log-odds"
        sign = np.where(np.asarray(predicted) == classes[1], 1.0, -1.0)
    else:
        k, sign, space = _class_index(classes, predicted), np.ones(len(Z)), "log-odds"
    baseline = np.asarray(model._baseline_prediction, dtype=float).reshape(-1)
    base = baseline[k].copy()
    parts = np.zeros(Z.shape)
    for c in range(width):
        rows = k == c
        if not rows.any():
            continue
        for stage in predictors:
            root, contrib = _hist_tree_parts(stage[c].nodes, Z[rows])
            base[rows] += root
            parts[rows] += contrib
    return sign * base, sign[:, None] * parts, space


def _linear_parts(linear_model, Z, predicted):
    """Coefficient times encoded value, for the predicted label's decision function."""
    coef = np.atleast_2d(linear_model.coef_)
    intercept = np.atleast_1d(linear_model.intercept_)
    classes = getattr(linear_model, "classes_", None)
    if classes is None:
        k, sign, space = np.zeros(len(Z), int), np.ones(len(Z)), "value"
    elif len(coef) == 1:
        k, space = np.zeros(len(Z), int), "log-odds"
        sign = np.where(np.asarray(predicted) == classes[1], 1.0, -1.0)
    else:
        k, sign, space = _class_index(classes, predicted), np.ones(len(Z)), "log-odds"
    return sign * intercept[k], sign[:, None] * coef[k] * Z, space


def source_columns(head, n_inputs: int) -> list[int] | None:
    """Given a Pipeline's head, return for each column it outputs the input column it came from,
    or None when that cannot be told (e.g. PCA, or a column mixing several inputs)."""
    sources: list[int] | None = list(range(n_inputs))
    for _, step in head.steps:
        if isinstance(step, str) or step is None or _kind(step) in COLUMNWISE:
            if len(sources) != getattr(step, "n_features_in_", len(sources)):
                return None
            continue
        if hasattr(step, "transformers_") and hasattr(step, "output_indices_"):
            inner = _column_transformer(step)
        elif _kind(step) == ONE_HOT:
            inner = _one_hot(step, list(range(len(step.categories_))))
        else:
            return None
        if inner is None or len(sources) != getattr(step, "n_features_in_", len(sources)):
            return None
        sources = [sources[j] for j in inner]
    return sources


def _input_indices(ct, columns) -> list[int] | None:
    names = [str(n) for n in getattr(ct, "feature_names_in_", [])]
    if isinstance(columns, slice):
        return list(range(ct.n_features_in_))[columns]
    items = [columns] if isinstance(columns, (str, int, np.integer)) else list(columns)
    if items and isinstance(items[0], (bool, np.bool_)):
        return np.flatnonzero(items).tolist()
    if all(isinstance(c, str) for c in items):
        return [names.index(c) for c in items] if set(items) <= set(names) else None
    if all(isinstance(c, (int, np.integer)) for c in items):
        return [int(c) for c in items]
    return None  # a callable or a selector: not told here


def _column_transformer(ct) -> list[int] | None:
    """For a fitted ColumnTransformer, return each output column's input column, or None."""
    sources = [None] * sum(s.stop - s.start for s in ct.output_indices_.values())
    for name, transformer, columns in ct.transformers_:
        out = ct.output_indices_.get(name, slice(0, 0))
        if out.stop == out.start:
            continue
        inputs = _input_indices(ct, columns)
        if inputs is None:
            return None
        width = out.stop - out.start
        if isinstance(transformer, str) or _columnwise(transformer):  # "passthrough"
            mapped = inputs
        elif len(inputs) == 1:
            mapped = inputs * width
        elif _kind(transformer) == ONE_HOT:
            mapped = _one_hot(transformer, inputs)
        else:
            mapped = None
        if mapped is None or len(mapped) != width:
            return None
        sources[out.start:out.stop] = mapped
    return sources


def _columnwise(transformer) -> bool:
    steps = getattr(transformer, "steps", None)
    parts = [s for _, s in steps] if steps else [transformer]
    return all(isinstance(s, str) or _kind(s) in COLUMNWISE for s in parts)


def _one_hot(encoder, inputs: list[int]) -> list[int] | None:
    """For a fitted OneHotEncoder over `inputs`, return each output column's input column."""
    if any(c is not None for c in getattr(encoder, "infrequent_categories_", []) or []):
        return None
    dropped = encoder.drop_idx_ if encoder.drop_idx_ is not None else [None] * len(inputs)
    out = []
    for j, (cats, drop) in enumerate(zip(encoder.categories_, dropped)):
        out += [inputs[j]] * (len(cats) - (drop is not None))
    return out
