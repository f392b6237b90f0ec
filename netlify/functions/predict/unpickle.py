"""Unpickling a model without running anything that is not part of a model.

Owns: the allow list of globals a scikit-learn estimator's pickle may name (the approach of
skops' trusted types and `torch.load(weights_only=True)`), and `restricted_loads`, which
refuses any other global by name before it is ever imported or called.

A module prefix is not enough (NumPy ships test helpers that run code), so the list is:
the few reconstructor functions NumPy, SciPy and Cython pickles call, plain builtin
containers, and classes only: scikit-learn estimators (subclasses of BaseEstimator) and
their fitted parts, NumPy arrays, dtypes, scalars, ufuncs and random generators, and
SciPy's sparse matrices. `extra` adds a user's own "module.Name" globals.
"""
from __future__ import annotations

import importlib
import io
import pickle

ALLOWED_ROOTS = ("sklearn", "numpy", "scipy")
# Parts of the allowed packages that exist to run code (tests, build tools): never reached.
FORBIDDEN_PARTS = {"tests", "testing", "_testing", "_mocking", "conftest", "f2py", "distutils",
                   "_pytesttester", "_testutils", "_build_utils", "_distributor_init", "lib"}
ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
BUILTINS = {"list", "dict", "set", "frozenset", "tuple", "slice", "bytes", "bytearray",
            "complex", "float", "int", "bool", "str", "object", "range"}
FUNCTIONS = {
    "copyreg._reconstructor", "copyreg.__newobj__", "_codecs.encode",
    "numpy._core.multiarray._reconstruct", "numpy._core.multiarray.scalar",
    "numpy._core.numeric._frombuffer", "numpy._core._internal._reconstruct",
    "numpy.random._pickle.__bit_generator_ctor", "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
    # `cls.__new__(cls)` for KDTree, BallTree and distance metrics (nearest-neighbour models)
    "sklearn.neighbors._kd_tree.newObj", "sklearn.neighbors._ball_tree.newObj",
    "sklearn.metrics._dist_metrics.newObj",
}
CLASSES = {
    "numpy.ndarray", "numpy.dtype", "numpy.ma.core.MaskedArray",
    "numpy.random._generator.Generator", "numpy.random.mtrand.RandomState",
    "numpy.random.bit_generator.SeedSequence", "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64", "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox", "numpy.random._sfc64.SFC64",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.utils._bunch.Bunch",
}
# Fitted parts that scikit-learn keeps in modules of their own (losses and their links,
# distance metrics).
CLASS_MODULES = {"sklearn._loss._loss", "sklearn._loss.loss", "sklearn._loss.link",
                 "sklearn.metrics._dist_metrics"}


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow list; `.name` says which."""

    def __init__(self, name: str):
        super().__init__(f"the pickle names {name[:200]}, which is not on the list of "
                         "globals a scikit-learn model may use")
        self.name = name[:200]


def _is_allowed_class(full: str, module: str, obj: object) -> bool:
    if not isinstance(obj, type):
        return False
    if full in CLASSES or module in CLASS_MODULES:
        return True
    import numpy as np
    if issubclass(obj, (np.generic, np.dtype)) and obj.__module__.startswith("numpy"):
        return True  # scalar types (numpy.float64) and dtype classes (numpy.dtypes.*)
    if module.startswith("scipy.sparse."):
        from scipy.sparse import sparray, spmatrix
        return issubclass(obj, (spmatrix, sparray))
    if module.startswith("sklearn."):
        from sklearn.base import BaseEstimator
        return issubclass(obj, BaseEstimator)
    return False


def check_global(module: str, name: str, *, extra: frozenset[str] = frozenset()) -> object:
    """Given a global a pickle names, return the object if it is allowed; else ForbiddenGlobal."""
    module = ALIASES.get(module, module)
    if module.startswith("numpy.core."):  # pickles written by NumPy 1 name numpy.core
        module = "numpy._core." + module.removeprefix("numpy.core.")
    full = f"{module}.{name}"
    if full in extra:
        return getattr(importlib.import_module(module), name)
    if module == "builtins":
        if name in BUILTINS:
            return getattr(__import__("builtins"), name)
        raise ForbiddenGlobal(full)
    parts = module.split(".")
    if parts[0] not in ALLOWED_ROOTS and full not in FUNCTIONS:
        raise ForbiddenGlobal(full)
    if FORBIDDEN_PARTS.intersection(parts[1:]) or not name.isidentifier():
        raise ForbiddenGlobal(full)
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ForbiddenGlobal(full) from None
    if full in FUNCTIONS:
        return obj
    if name.startswith("__pyx_unpickle_") and parts[0] in ALLOWED_ROOTS:
        return obj  # Cython's generated reconstructor of one of its own extension types
    import numpy as np
    if isinstance(obj, np.ufunc) and module == "numpy":
        return obj  # element-wise maths (FunctionTransformer(np.log1p))
    if _is_allowed_class(full, module, obj):
        return obj
    raise ForbiddenGlobal(full)


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class only hands out allowed globals."""

    def __init__(self, file, *, extra: frozenset[str] = frozenset()):
        super().__init__(file)
        self.extra = extra

    def find_class(self, module: str, name: str) -> object:
        return check_global(module, name, extra=self.extra)


def restricted_loads(data: bytes, *, extra: frozenset[str] | tuple = frozenset()) -> object:
    """Given pickle bytes, return the object; ForbiddenGlobal if it names a disallowed global."""
    return RestrictedUnpickler(io.BytesIO(data), extra=frozenset(extra)).load()
