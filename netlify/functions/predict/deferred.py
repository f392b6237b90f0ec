"""Modules the cold start defers until something reads them.

Owns: `defer(name)`, which puts a stand-in for a module in sys.modules; the first read of one
of its attributes imports the real module in its place. scikit-learn imports scipy.stats when
it is imported (sklearn.utils.fixes, for `mode`), about half of a cold start, though a tree
never calls it; deferred, it is imported only by a model that uses it. Installed only on the
function's load path (ModelStore, before `import sklearn`); tests/test_deferred.py fails the
day a scikit-learn upgrade makes the stand-in load for the served models, or answer otherwise.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

DEFERRED = ("scipy.stats",)
# Names scikit-learn's modules import from it when they are imported (`from scipy.stats
# import rankdata` in sklearn.metrics, which every tree imports; chi2 in sklearn.covariance)
# and only call, or read attributes of, later: each is handed out as a `Later`, which imports
# the real module then. Any other name imports the real module at once.
CALLED_LATER = {"scipy.stats": ("rankdata", "gmean", "spearmanr", "chi2")}
_lock = threading.RLock()


class Deferred(types.ModuleType):
    """Stands for a module not imported yet. Its spec, path and file are the real module's,
    so the import system can find its submodules without importing it; any other attribute
    imports the real module (once, under a lock) and is read from it."""

    def __getattr__(self, attr: str):
        if attr in CALLED_LATER.get(self.__name__, ()):
            return Later(self, attr)
        return getattr(_real(self), attr)


class Later:
    """Stands for the attribute attr of a deferred module: calling it, or reading one of its
    attributes, imports the module and uses the real one."""
    __slots__ = ("_stand_in", "_attr")

    def __init__(self, stand_in: Deferred, attr: str):
        self._stand_in, self._attr = stand_in, attr

    def __call__(self, *args, **kwargs):
        return getattr(_real(self._stand_in), self._attr)(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(getattr(_real(self._stand_in), self._attr), name)


def _real(stand_in: Deferred) -> types.ModuleType:
    """Import the module stand_in stands for, in its place in sys.modules and on its parent."""
    name = stand_in.__name__
    with _lock:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
            parent, _, child = name.rpartition(".")
            try:
                module = importlib.import_module(name)
            except BaseException:
                sys.modules[name] = stand_in  # as it was: the next read tries again
                raise
            if parent:
                setattr(sys.modules[parent], child, module)
        return sys.modules[name]


def defer(name: str) -> None:
    """Put a stand-in for the module name in sys.modules, unless it is imported already."""
    with _lock:
        if name in sys.modules:
            return
        spec = importlib.util.find_spec(name)  # imports the parent package (scipy: light)
        if spec is None:
            return
        stand_in = Deferred(name)
        stand_in.__spec__, stand_in.__loader__ = spec, spec.loader
        stand_in.__file__ = spec.origin
        stand_in.__package__ = name if spec.submodule_search_locations is not None \
            else name.rpartition(".")[0]
        if spec.submodule_search_locations is not None:
            stand_in.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = stand_in
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, stand_in)


def is_deferred(name: str) -> bool:
    """Return whether the module name is still a stand-in (never read since `defer`)."""
    return isinstance(sys.modules.get(name), Deferred)
