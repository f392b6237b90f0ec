"""Auditing what a pickle built before it serves anything.

Owns: `audit(obj)`, which walks the whole object graph an unpickled model holds and refuses
(Refused, naming the object's path and the reason) anything scikit-learn itself would not
have set: an object of a type off the allow list, a callable that is not a vetted NumPy ufunc
or scikit-learn function, a method name that a meta-estimator would call but that is not one
of scikit-learn's own prediction methods, an object array where scikit-learn keeps none, a
tree whose C walk could loop or read out of bounds, a neighbours index, a support vector
machine or a sparse matrix whose sizes disagree. Also the checks of a tree's and an index's
state that the unpickler runs before scikit-learn's C code ever holds them.
"""
from __future__ import annotations

import math
import types
from functools import partial

import numpy as np

from .allowed import SKLEARN_CLASSES
from .unpickle import (METRICS, SKLEARN_FUNCTIONS, SPARSE, UFUNCS, Refused, _Pending,
                       is_plain)

# Method names a meta-estimator calls by a name it holds (stacking, thresholds, calibration).
METHODS = {"predict", "predict_proba", "decision_function", "predict_log_proba", "auto"}
DISPATCH_ATTRS = {"stack_method_", "response_method", "_response_method"}
# Where scikit-learn keeps arrays of Python objects (labels, categories, names).
OBJECT_ARRAYS = {"classes_", "categories_", "feature_names_in_", "statistics_",
                 "_feature_names_in", "categories", "estimators_", "drop_idx_", "_columns",
                 "_infrequent_indices", "infrequent_categories_", "_default_to_infrequent_mappings",
                 "bin_edges_"}
# Where an estimator keeps the estimators it calls: each must be one (or "drop", "passthrough").
SLOTS = {"steps", "transformers", "transformers_", "transformer_list", "estimators",
         "estimators_", "estimator", "estimator_", "final_estimator", "final_estimator_",
         "named_estimators_", "best_estimator_", "base_estimator", "base_estimator_",
         "transformer", "transformer_", "regressor", "regressor_", "init_"}
OBJECT_ARRAY_WORDS = ("feature_names", "categor", "classes", "vocabulary", "labels")
KERNELS = {"linear", "poly", "rbf", "sigmoid"}
FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                  types.BuiltinMethodType, np.ufunc, partial)
FOREIGN = ("numpy.random", "sklearn._loss._loss", "sklearn.linear_model._sgd_fast")  # state NumPy or Cython checks itself


def _refuse(path: str, reason: str) -> Refused:
    return Refused(f"{path[:200]}: {reason}")


def _name(obj) -> str:
    t = obj if isinstance(obj, type) else type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _vetted_function(f, extra: frozenset) -> bool:
    if isinstance(f, np.ufunc):
        return f.__name__ in UFUNCS
    name = f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', '')}"
    return name in SKLEARN_FUNCTIONS or name in extra


class _Audit:
    def __init__(self, extra: frozenset):
        self.extra = extra
        self.seen: set[int] = set()

    def walk(self, obj, path: str, attr: str = "") -> None:
        if isinstance(obj, (str, bytes, bool, int, float, complex, type(None), np.generic,
                            np.dtype)):
            return
        if isinstance(obj, slice):
            if not all(map(is_plain, (obj.start, obj.stop, obj.step))):
                raise _refuse(path, "a slice of something other than numbers")
            return
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        if isinstance(obj, _Pending):
            raise _refuse(path, "an array or dtype whose state never arrived")
        if isinstance(obj, (list, tuple, set, frozenset)):
            for i, v in enumerate(obj):
                self.walk(v, f"{path}[{i}]", attr)
        elif isinstance(obj, dict) and type(obj) is dict:
            self.mapping(obj, path)
        elif isinstance(obj, np.ndarray):
            self.array(obj, path, attr)
        elif isinstance(obj, type):
            if not issubclass(obj, np.generic) and not (
                    attr.startswith("dtype") and obj in (object, str, int, float, bool)):
                raise _refuse(path, f"holds the class {obj.__qualname__[:60]}, which no "
                                    "scikit-learn model keeps as a value")
        elif isinstance(obj, FUNCTION_TYPES):
            self.callable(obj, path)
        else:
            self.instance(obj, path)

    def mapping(self, d: dict, path: str) -> None:
        for k, v in d.items():
            if not is_plain(k) and not (isinstance(k, tuple) and all(map(is_plain, k))):
                raise _refuse(path, "a dictionary key is not a plain value")
            self.walk(v, f"{path}[{str(k)[:40]!r}]", str(k))

    def array(self, a: np.ndarray, path: str, attr: str) -> None:
        if type(a) is not np.ndarray:
            raise _refuse(path, f"an array of type {type(a).__name__}")
        if not a.dtype.hasobject:
            return
        if attr not in OBJECT_ARRAYS and not any(w in attr for w in OBJECT_ARRAY_WORDS):
            raise _refuse(path, "an array of Python objects where scikit-learn keeps none")
        for i, v in enumerate(a.flat):
            if isinstance(v, np.ndarray):  # KBinsDiscretizer's edges: one array per feature
                self.array(v, f"{path}[{i}]", attr)
            elif not is_plain(v):
                if not hasattr(v, "get_params"):
                    raise _refuse(f"{path}[{i}]", "an object array holds something other than "
                                                   "plain values or estimators")
                self.walk(v, f"{path}[{i}]")

    def callable(self, f, path: str) -> None:
        if isinstance(f, partial):
            func = f"{getattr(f.func, '__module__', '')}.{getattr(f.func, '__qualname__', '')}"
            if func != "sklearn.utils.validation.check_array" or f.args \
                    or not all(isinstance(k, str) for k in f.keywords):
                raise _refuse(path, "a partial function scikit-learn itself would not build")
            for k, v in f.keywords.items():
                self.walk(v, f"{path}.{k}")
            return
        if not _vetted_function(f, self.extra):
            raise _refuse(path, f"holds the callable {getattr(f, '__qualname__', '?')[:60]}, "
                                "which is not a vetted NumPy ufunc or scikit-learn function")

    def instance(self, obj, path: str) -> None:
        name = _name(obj)
        if name in self.extra:
            return
        if name in SPARSE:
            self.sparse(obj, path)
            return
        if name.startswith(FOREIGN) or name in METRICS or name in (
                "sklearn.tree._tree.Tree", "sklearn.neighbors._kd_tree.KDTree",
                "sklearn.neighbors._ball_tree.BallTree"):
            return  # checked as it was built (unpickle.py), or NumPy's own checked state
        if name not in SKLEARN_CLASSES:
            raise _refuse(path, f"an object of type {name[:100]}, which is not on the allow list")
        state = getattr(obj, "__dict__", None)
        if state is None:
            raise _refuse(path, f"an object of type {name[:100]} without attributes")
        if name == "sklearn.utils._bunch.Bunch":
            self.mapping(dict(obj), path)
        for check in CHECKS.get(type(obj).__name__, ()):
            check(obj, path)
        if hasattr(obj, "get_params"):
            self.estimator(obj, path)
        for k, v in state.items():
            self.walk(v, f"{path}.{k}", k)

    def estimator(self, est, path: str) -> None:
        for attr in DISPATCH_ATTRS & set(vars(est)):
            values = vars(est)[attr]
            values = values if isinstance(values, list) else [values]
            if not all(isinstance(v, str) and v in METHODS for v in values):
                raise _refuse(f"{path}.{attr}", "names a method that is not one of "
                                                "scikit-learn's prediction methods")
        for attr in ("func", "inverse_func"):
            f = vars(est).get(attr)
            if f is not None and not (callable(f) and (isinstance(f, partial)
                                                       or _vetted_function(f, self.extra))):
                raise _refuse(f"{path}.{attr}", "is not a vetted NumPy ufunc or scikit-learn "
                                                "function")
        for attr in SLOTS & set(vars(est)):
            for where, part in _slot_parts(vars(est)[attr], f"{path}.{attr}"):
                if not (part is None or hasattr(part, "get_params")
                        or (isinstance(part, str) and part in ("drop", "passthrough", "zero"))):
                    raise _refuse(where, "is not an estimator, yet the estimator calls it as one")
        n = vars(est).get("n_features_in_")
        if n is not None and not (type(n) is int or isinstance(n, np.integer)):
            raise _refuse(f"{path}.n_features_in_", "is not a whole number")
        names = vars(est).get("feature_names_in_")
        if names is not None and not (isinstance(names, np.ndarray) and names.ndim == 1
                                      and all(isinstance(s, str) for s in names)):
            raise _refuse(f"{path}.feature_names_in_", "is not an array of text")
        classes = vars(est).get("classes_")
        if classes is not None and not _plain_labels(classes):
            raise _refuse(f"{path}.classes_", "is not an array of plain labels")
        tree = vars(est).get("tree_")
        if tree is not None and n is not None and tree.n_features != n:
            raise _refuse(f"{path}.tree_", f"tests {tree.n_features} features; the estimator "
                                           f"takes {n}")

    def sparse(self, m, path: str) -> None:
        try:
            m.check_format(full_check=True)
        except Exception as exc:  # scipy says why in many ways
            raise _refuse(path, f"a malformed sparse matrix ({str(exc)[:80]})") from None
        if m.dtype.hasobject:
            raise _refuse(path, "a sparse matrix of Python objects")


def _slot_parts(value, path: str):
    """Yield (path, part) for each estimator a slot holds: itself, the items of a list or an
    array, the values of a Bunch, the second item of (name, estimator[, columns]) tuples."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}[{str(k)[:40]!r}]", v
    elif isinstance(value, np.ndarray) and value.dtype.hasobject:
        for i, v in enumerate(value.flat):
            yield f"{path}[{i}]", v
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if isinstance(v, tuple) and len(v) in (2, 3) and isinstance(v[0], str):
                yield f"{path}[{i}][1]", v[1]
            else:
                yield f"{path}[{i}]", v
    else:
        yield path, value


def _plain_labels(classes) -> bool:
    if isinstance(classes, list):
        return all(_plain_labels(c) for c in classes)
    return isinstance(classes, np.ndarray) and classes.ndim == 1 and (
        not classes.dtype.hasobject or all(is_plain(c) for c in classes))


# -- per-class checks of what scikit-learn's compiled code walks ------------------------------

def _same_features(est, path: str) -> None:
    """Forests and gradient boosting hand X to their trees unchecked."""
    n = getattr(est, "n_features_in_", None)
    trees = getattr(est, "estimators_", [])
    for i, t in enumerate(np.asarray(trees, dtype=object).flat):
        if not hasattr(t, "tree_") or t.tree_.n_features != n:
            raise _refuse(f"{path}.estimators_[{i}]", "is not a tree over the estimator's "
                                                      f"{n} features")


def _boosting(est, path: str) -> None:
    if "estimators_" not in vars(est):
        return  # not fitted: predict refuses before any tree is walked
    _same_features(est, path)
    trees = est.estimators_
    k = 1 if not hasattr(est, "classes_") or len(est.classes_) <= 2 else len(est.classes_)
    if not isinstance(trees, np.ndarray) or trees.ndim != 2 or trees.shape[1] != k:
        raise _refuse(f"{path}.estimators_", f"is not a table of trees with {k} columns")
    for t in trees.flat:
        if t.tree_.n_outputs != 1 or t.tree_.max_n_classes != 1:
            raise _refuse(f"{path}.estimators_", "holds a tree that is not a regression tree")


def _stacking(est, path: str) -> None:
    methods = getattr(est, "stack_method_", [])
    if len(methods) != len(getattr(est, "estimators_", [])):
        raise _refuse(f"{path}.stack_method_", "does not name one method per estimator")
    for i, e in enumerate(est.estimators_):
        if e != "drop" and not hasattr(e, "get_params"):
            raise _refuse(f"{path}.estimators_[{i}]", "is not an estimator")


def _voting(est, path: str) -> None:
    if getattr(est, "voting", "soft") not in ("hard", "soft"):
        raise _refuse(f"{path}.voting", "is neither 'hard' nor 'soft'")
    for i, e in enumerate(getattr(est, "estimators_", [])):
        if not hasattr(e, "get_params"):
            raise _refuse(f"{path}.estimators_[{i}]", "is not an estimator")


def _selector(sel, path: str) -> None:
    """make_column_selector: a regular expression and dtypes (checked by the walk)."""
    if not (sel.pattern is None or isinstance(sel.pattern, str) and len(sel.pattern) <= 200):
        raise _refuse(f"{path}.pattern", "is not a short regular expression")


def _calibrated(c, path: str) -> None:
    if getattr(c, "method", None) not in ("sigmoid", "isotonic", "temperature"):
        raise _refuse(f"{path}.method", "is not a calibration method scikit-learn has")
    if not hasattr(c, "estimator") or not hasattr(c.estimator, "get_params") or not all(
            hasattr(k, "get_params") for k in getattr(c, "calibrators", [])):
        raise _refuse(path, "calibrates something that is not an estimator")


def _libsvm(est, path: str) -> None:
    if "support_vectors_" not in vars(est):
        return  # not fitted: predict refuses before libsvm runs
    sv, support, n_sv = est.support_vectors_, est.support_, est._n_support
    dual, intercept = est._dual_coef_, est._intercept_
    if not all(isinstance(a, np.ndarray) for a in (support, n_sv, dual, intercept)):
        raise _refuse(path, "a support vector machine's arrays are missing")
    n = sv.shape[0]
    classes = getattr(est, "classes_", None)
    ok = (est.kernel in KERNELS and sv.ndim == 2 and support.shape == (n,)
          and sv.shape[1] == getattr(est, "n_features_in_", sv.shape[1])
          and n_sv.ndim == 1 and n_sv.dtype.kind in "iu" and (n_sv >= 0).all())
    if ok and classes is not None and len(classes) >= 2:
        m = len(classes)
        ok = (n_sv.shape == (m,) and int(n_sv.sum()) == n and dual.shape == (m - 1, n)
              and intercept.shape == (m * (m - 1) // 2,)
              and all(p.shape in ((0,), intercept.shape) for p in (est._probA, est._probB)))
    elif ok:
        ok = int(n_sv.max(initial=0)) <= n and dual.shape == (1, n) and intercept.shape == (1,)
    if not ok:
        raise _refuse(path, "a support vector machine's sizes disagree (support vectors, "
                            "coefficients, classes)")


def _hist_boosting(est, path: str) -> None:
    if "_predictors" not in vars(est):
        return  # not fitted: predict refuses before any predictor runs
    n = getattr(est, "n_features_in_", None)
    if type(n) is not int or not hasattr(est, "_bin_mapper"):
        raise _refuse(path, "its predictors come without their features' description")
    mapper = est._bin_mapper
    cat = mapper.is_categorical_
    if cat is None:
        cat = np.zeros(n, dtype=np.uint8)
    if not isinstance(cat, np.ndarray) or cat.shape != (n,) \
            or len(mapper.bin_thresholds_) != n:
        raise _refuse(f"{path}._bin_mapper", "does not describe the estimator's features")
    for f in np.flatnonzero(cat):
        known = np.asarray(mapper.bin_thresholds_[f])
        if known.dtype.kind not in "iuf" or known.size > 256 or not (
                (known >= 0) & (known < 256) & (known == np.floor(known))).all():
            raise _refuse(f"{path}._bin_mapper.bin_thresholds_[{f}]", "categories are not "
                                                                     "whole numbers below 256")
    k = getattr(est, "n_trees_per_iteration_", 1)
    for i, row in enumerate(est._predictors):
        if not isinstance(row, list) or len(row) != k:
            raise _refuse(f"{path}._predictors[{i}]", f"does not hold {k} trees")
        for j, p in enumerate(row):
            _predictor(p, f"{path}._predictors[{i}][{j}]", n, cat)


def _predictor(p, path: str, n_features: int, categorical: np.ndarray) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    if type(p).__name__ != "TreePredictor":
        raise _refuse(path, "is not a tree predictor")
    nodes = p.nodes
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE \
            or nodes.ndim != 1 or len(nodes) == 0:
        raise _refuse(f"{path}.nodes", "is not an array of tree nodes")
    bitsets = [p.raw_left_cat_bitsets, p.binned_left_cat_bitsets]
    if not all(isinstance(b, np.ndarray) and b.ndim == 2 and b.shape[1] == 8
               and b.dtype == np.uint32 for b in bitsets):
        raise _refuse(f"{path}", "category bitsets are malformed")
    inner = nodes[nodes["is_leaf"] == 0]
    _children(path, len(nodes), inner["left"].astype(np.int64), inner["right"].astype(np.int64))
    f = inner["feature_idx"]
    if ((f < 0) | (f >= n_features)).any():
        raise _refuse(f"{path}.nodes", f"a node tests a feature outside 0..{n_features - 1}")
    cats = inner[inner["is_categorical"] != 0]
    if (cats["bitset_idx"] >= min(len(b) for b in bitsets)).any() \
            or not categorical[cats["feature_idx"]].all():
        raise _refuse(f"{path}.nodes", "a categorical split names a missing category set")


def _children(path: str, count: int, left: np.ndarray, right: np.ndarray) -> None:
    """Refuse child indices that are out of range or make the walk from the root anything but a
    tree (every child entered once, the root never): no cycle can then be reached."""
    kids = np.concatenate([left, right])
    if (kids == 0).any():
        raise _refuse(path, "a node's child is the root (the walk would never end)")
    if ((kids < 1) | (kids >= count)).any():
        raise _refuse(path, f"a node's child is outside the tree's {count} nodes")
    if len(np.unique(kids)) != len(kids):
        raise _refuse(path, "a node is the child of two nodes (the walk could loop)")


CHECKS = {
    "StackingClassifier": [_stacking], "StackingRegressor": [_stacking],
    "VotingClassifier": [_voting], "VotingRegressor": [_voting],
    "RandomForestClassifier": [_same_features], "RandomForestRegressor": [_same_features],
    "ExtraTreesClassifier": [_same_features], "ExtraTreesRegressor": [_same_features],
    "GradientBoostingClassifier": [_boosting], "GradientBoostingRegressor": [_boosting],
    "HistGradientBoostingClassifier": [_hist_boosting],
    "HistGradientBoostingRegressor": [_hist_boosting],
    **{n: [_libsvm] for n in ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM")},
    "_CalibratedClassifier": [_calibrated],
    "make_column_selector": [_selector],
}


# -- state checks run by the unpickler before the compiled object receives its state --------

TREE = "Tree (sklearn.tree._tree.Tree, a decision tree's nodes)"


def check_tree_state(tree, state) -> None:
    """Refuse a decision tree's state unless its node table is a well-formed tree over
    tree.n_features features with a value table of the shape the tree was built for."""
    from sklearn.tree._tree import NODE_DTYPE
    if not isinstance(state, dict):
        raise Refused(f"{TREE}: its state is not a dict")
    nodes, values = state.get("nodes"), state.get("values")
    count, depth = state.get("node_count"), state.get("max_depth")
    if not (isinstance(nodes, np.ndarray) and nodes.dtype == NODE_DTYPE and nodes.ndim == 1
            and nodes.flags.c_contiguous and type(count) is int and count == len(nodes) >= 1
            and type(depth) is int and 0 <= depth < count + 1):
        raise Refused(f"{TREE}: its node table is malformed")
    if not (isinstance(values, np.ndarray) and values.dtype == np.float64
            and values.shape == (count, tree.n_outputs, tree.max_n_classes)):
        raise Refused(f"{TREE}: its value table does not match its nodes")
    leaf = nodes["left_child"] == -1
    if ((nodes["right_child"] == -1) != leaf).any():
        raise Refused(f"{TREE}: a node has one child")
    inner = nodes[~leaf]
    _children(TREE, count, inner["left_child"], inner["right_child"])
    f = inner["feature"]
    if ((f < 0) | (f >= tree.n_features)).any():
        raise Refused(f"{TREE}: a node tests a feature outside 0..{tree.n_features - 1}")
    if not np.isfinite(inner["threshold"]).all():
        raise Refused(f"{TREE}: a node's threshold is not a finite number")
    if _depth(nodes) > depth:
        raise Refused(f"{TREE}: deeper than its recorded depth")


def _depth(nodes) -> int:
    """Return the depth of the tree from its root (its children checked already)."""
    level, depth = np.array([0]), 0
    left, right = nodes["left_child"], nodes["right_child"]
    while True:
        kids = np.concatenate([left[level], right[level]])
        kids = kids[kids != -1]
        if not len(kids):
            return depth
        level, depth = kids, depth + 1


def check_index_state(index, state) -> None:
    """Refuse a KDTree's or BallTree's state unless its nodes cover its points in range and
    the node layout is the one its size and leaf size make."""
    from sklearn.neighbors._kd_tree import NodeData
    if not isinstance(state, tuple) or len(state) != 13:
        raise Refused("a neighbours index's state is malformed")
    data, idx, node_data, bounds, leaf_size, n_levels, n_nodes = state[:7]
    metric, weight = state[11], state[12]
    ok = (isinstance(data, np.ndarray) and data.dtype == np.float64 and data.ndim == 2
          and data.flags.c_contiguous and isinstance(idx, np.ndarray)
          and idx.dtype == np.intp and idx.shape == (len(data),)
          and isinstance(node_data, np.ndarray) and node_data.dtype == NodeData
          and all(type(v) is int for v in state[4:11]) and leaf_size >= 1
          and n_nodes == len(node_data) >= 1 and isinstance(bounds, np.ndarray)
          and bounds.dtype == np.float64 and bounds.ndim == 3
          and bounds.shape[1:] == (n_nodes, data.shape[1]) and bounds.shape[0] in (1, 2))
    n = len(data) if ok else 0
    ok = ok and n >= 1 and n_levels == int(math.log2(max(1, (n - 1) / leaf_size))) + 1 \
        and n_nodes == 2 ** n_levels - 1
    ok = ok and np.array_equal(np.sort(idx), np.arange(n))
    if ok:
        start, end, leaf = node_data["idx_start"], node_data["idx_end"], node_data["is_leaf"]
        last = np.arange(n_nodes) * 2 + 1 >= n_nodes
        ok = bool(((0 <= start) & (start <= end) & (end <= n)).all() and leaf[last].all())
    ok = ok and (weight is None or (isinstance(weight, np.ndarray) and weight.shape == (n,)
                                    and weight.dtype == np.float64))
    ok = ok and _name(metric) in METRICS
    if not ok:
        raise Refused(f"{type(index).__name__} (a neighbours index): its nodes, points or "
                      "metric disagree")


def check_metric_state(metric, state) -> None:
    """Refuse a distance metric's state unless it is (p, no weights, no matrix)."""
    if not (isinstance(state, tuple) and len(state) == 3 and type(state[0]) is float
            and (state[0] >= 1 or math.isinf(state[0]))
            and all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in state[1:])
            and state[1].ndim == 1 and state[2].ndim == 2 and state[2].size <= 1
            and state[1].size <= (0 if "Minkowski" in type(metric).__name__ else 1)):
        raise Refused("a distance metric's state is malformed")


def audit(obj, *, extra: frozenset = frozenset()) -> None:
    """Refuse (Refused, naming the object's path and why) a loaded model holding anything
    scikit-learn itself would not have set; return None if all of it passes."""
    _Audit(frozenset(extra)).walk(obj, type(obj).__name__)
