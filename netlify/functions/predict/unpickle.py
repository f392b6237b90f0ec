"""Unpickling a model without running anything that is not part of a model.

Owns: the allow list of globals a scikit-learn estimator's pickle may name, checked by name
before anything is imported (as skops' audit does), and `restricted_loads`, an unpickler that
rebuilds what it allows instead of restoring raw state:

- classes only by their exact names (allowed.py, written from the installed scikit-learn;
  NumPy scalar types; a short list of reconstructor functions, each replaced by a checked one);
- NumPy dtypes rebuilt from validated descriptors (plain numbers, bool, fixed-width text and
  the structured dtypes scikit-learn's own trees use, compared with the installed ones), never
  from a dtype's raw state; arrays built only from as many bytes as the pickle carries; object
  arrays holding only plain values (or estimators);
- no call that allocates more than the pickle's own size (range, bytes, bytearray);
- a tree's or a neighbours index's state checked to be well formed before scikit-learn's C
  code ever walks it.

What was built is then audited as a whole (audit.py) before it serves. `extra` adds a user's
own "module.Name" globals, which are then trusted as they are.
"""
from __future__ import annotations

import copyreg
import importlib
import io
import math
import pickle
import re

from .allowed import SKLEARN_CLASSES

ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
PLAIN = (str, int, float, bool, type(None))
# Scalar types an estimator keeps as a parameter (OneHotEncoder(dtype=np.float64)).
SCALAR_TYPES = {"float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64",
                "uint32", "uint16", "uint8", "bool", "bool_", "str_", "bytes_", "object_",
                "complex128", "complex64", "intp", "uintp", "longlong", "ulonglong", "double",
                "single", "int_", "number", "integer", "signedinteger", "unsignedinteger",
                "floating", "inexact", "complexfloating", "generic", "character", "flexible",
                "datetime64", "timedelta64"}
# Pure element-wise NumPy ufuncs a FunctionTransformer may hold.
UFUNCS = {"log", "log1p", "log2", "log10", "exp", "expm1", "exp2", "sqrt", "cbrt", "square",
          "abs", "absolute", "fabs", "negative", "positive", "reciprocal", "sign", "tanh",
          "sinh", "cosh", "arcsinh", "arctan", "sin", "cos", "tan", "arcsin", "arccos",
          "arccosh", "arctanh", "floor", "ceil", "rint", "trunc", "isnan", "isfinite",
          "logical_not"}
# scikit-learn's own functions an estimator may keep as a value.
SKLEARN_FUNCTIONS = {"sklearn.utils.validation.check_array",
                     "sklearn.feature_selection._univariate_selection.f_classif",
                     "sklearn.feature_selection._univariate_selection.f_regression",
                     "sklearn.feature_selection._univariate_selection.chi2",
                     "sklearn.feature_selection._mutual_info.mutual_info_classif",
                     "sklearn.feature_selection._mutual_info.mutual_info_regression"}
# Distance metrics of nearest-neighbour indexes whose state is checked (no weights matrix,
# no Python function).
METRICS = {f"sklearn.metrics._dist_metrics.{m}Distance{bits}"
           for m in ("Euclidean", "Manhattan", "Chebyshev", "Minkowski") for bits in (32, 64)}
# Reconstructors, each replaced by a checked one below.
FUNCTIONS = {
    "copyreg._reconstructor", "copyreg.__newobj__", "_codecs.encode", "numpy.dtype",
    "numpy._core.multiarray._reconstruct", "numpy._core.multiarray.scalar",
    "numpy._core.numeric._frombuffer",
    "numpy.random._pickle.__bit_generator_ctor", "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "sklearn.neighbors._kd_tree.newObj", "sklearn.neighbors._ball_tree.newObj",
    "sklearn.metrics._dist_metrics.newObj", "functools.partial",
}
CLASSES = {"numpy.ndarray", "numpy.random._generator.Generator",
           "numpy.random.mtrand.RandomState", "numpy.random.bit_generator.SeedSequence",
           "numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64",
           "numpy.random._pcg64.PCG64DXSM", "numpy.random._philox.Philox",
           "numpy.random._sfc64.SFC64"}
SPARSE = {f"scipy.sparse._{f}.{f}_{kind}" for f in ("csr", "csc") for kind in ("matrix", "array")}
# Cython loss objects: rebuilt by calling the class with its float parameters.
LOSS_MODULE = "sklearn._loss._loss"
SGD_LOSSES = {f"sklearn.linear_model._sgd_fast.{n}" for n in (
    "Hinge", "SquaredHinge", "ModifiedHuber", "EpsilonInsensitive", "SquaredEpsilonInsensitive")}
BUILTINS = {"list", "dict", "set", "frozenset", "tuple", "slice", "bytes", "bytearray",
            "complex", "float", "int", "bool", "str", "object", "range"}
BIT_GENERATORS = {"MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"}
SIMPLE_DTYPE = re.compile(r"[biufc]\d{1,2}|b1|\?|O[48]|[US]\d{1,7}")
MAX_TEXT_ITEM = 1 << 20  # bytes in one fixed-width string item


class Refused(pickle.UnpicklingError):
    """The pickle is no scikit-learn model's: the message says what and where."""


class ForbiddenGlobal(Refused):
    """The pickle names a global outside the allow list; `.name` says which."""

    def __init__(self, name: str):
        super().__init__(f"the pickle names {name[:200]}, which is not on the list of "
                         "globals a scikit-learn model may use")
        self.name = name[:200]


def _normal(module: str) -> str:
    module = ALIASES.get(module, module)
    if module.startswith("numpy.core."):  # pickles written by NumPy 1 name numpy.core
        module = "numpy._core." + module.removeprefix("numpy.core.")
    return module


def allowed_kind(full: str, *, extra: frozenset[str] = frozenset()) -> str | None:
    """Given "module.name", return what the allow list lets it be, by its name alone (nothing
    is imported here): "extra", "builtin", "function", "class", "value"; None if refused."""
    module, _, name = full.rpartition(".")
    if full in extra:
        return "extra"
    if module == "builtins":
        return "builtin" if name in BUILTINS else None
    if full in FUNCTIONS:
        return "function"
    if full in SKLEARN_CLASSES or full in CLASSES or full in SPARSE or full in METRICS:
        return "class"
    if module == LOSS_MODULE and name.startswith(("Cy", "__pyx_unpickle_Cy")) \
            and name.isidentifier() or full in SGD_LOSSES:
        return "class"
    if module == "numpy" and (name in SCALAR_TYPES or name in UFUNCS):
        return "value"
    if full in SKLEARN_FUNCTIONS:
        return "value"
    return None


def check_global(module: str, name: str, *, extra: frozenset[str] = frozenset()) -> object:
    """Given a global a pickle names, return the object if its name is allowed (imported only
    then); else ForbiddenGlobal."""
    full = f"{_normal(module)}.{name}"
    if allowed_kind(full, extra=extra) is None:
        raise ForbiddenGlobal(full)
    try:
        return getattr(importlib.import_module(full.rpartition(".")[0]), name)
    except (ImportError, AttributeError):
        raise ForbiddenGlobal(full) from None


class _Pending:
    """A dtype or array a pickle asked for, built only when its state arrives (BUILD)."""

    __slots__ = ("kind", "args")

    def __init__(self, kind: str, args: tuple):
        self.kind, self.args = kind, args


def _count(shape) -> int:
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape) \
            or len(shape) > 32:
        raise Refused("an array's shape is not a tuple of sizes")
    return math.prod(shape)


def _structured_dtypes():
    """Yield the structured dtypes scikit-learn's own objects hold, as the installed version
    makes them (imported one by one: a decision tree's needs only the first)."""
    from sklearn.tree._tree import NODE_DTYPE
    yield NODE_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    yield PREDICTOR_RECORD_DTYPE
    from sklearn.neighbors._kd_tree import NodeData
    yield NodeData


def is_plain(value) -> bool:
    """Return whether value is a plain scalar an object array may hold."""
    import numpy as np
    return isinstance(value, PLAIN) or (isinstance(value, np.generic)
                                        and not isinstance(value, (np.void, np.object_)))


class SafeUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, with every opcode that calls or restores state checked."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, *, size: int, extra: frozenset[str] = frozenset()):
        super().__init__(file)
        self.extra = extra
        self.size = size  # the pickle's bytes: no call may allocate more than that
        self.dtypes: set[int] = set()  # ids of the dtypes this load rebuilt
        self.pending_keys: dict[int, list] = {}
        self.built: set[int] = set()
        import numpy as np
        self.np = np
        self.safe = {  # what a pickle may call, each a checked stand-in
            "copyreg._reconstructor": self._reconstructor, "copyreg.__newobj__": self._newobj,
            "_codecs.encode": self._encode, "numpy.dtype": self._dtype,
            "numpy._core.multiarray._reconstruct": self._reconstruct,
            "numpy._core.multiarray.scalar": self._scalar,
            "numpy._core.numeric._frombuffer": self._frombuffer,
            "numpy.random._pickle.__generator_ctor": self._generator,
            "numpy.random._pickle.__randomstate_ctor": self._randomstate,
            "sklearn.neighbors._kd_tree.newObj": self._new_index,
            "sklearn.neighbors._ball_tree.newObj": self._new_index,
            "sklearn.metrics._dist_metrics.newObj": self._new_index,
            "functools.partial": self._partial,
            "builtins.range": self._range, "builtins.bytes": self._bytes,
            "builtins.bytearray": self._bytearray,
        }
        self.callables: dict[int, object] = {}

    # -- globals --------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> object:
        full = f"{_normal(module)}.{name}"
        obj = check_global(module, name, extra=self.extra)
        obj = self.safe.get(full, obj)
        self.callables[id(obj)] = obj
        return obj

    def _call(self, func, args: tuple):
        """Call func(*args) for REDUCE: only checked stand-ins, plain builtins, Cython losses
        and the user's trusted globals may be called."""
        np = self.np
        if not isinstance(args, tuple):
            raise Refused("a call's arguments are not a tuple")
        if id(func) not in self.callables:
            raise Refused("the pickle calls an object it did not name as a global")
        if func in self.safe.values():
            return func(*args)
        mod = getattr(func, "__module__", "")
        if mod == "builtins" and func in (slice, complex, float, int, bool, str, object):
            if not all(map(is_plain, args)):  # str() of a shared nest could be exponential
                raise Refused(f"the pickle calls {func.__name__} on something not plain")
            return func(*args)
        if mod == "builtins" and func in (list, dict, set, frozenset, tuple):
            if len(args) > 1 or args and not isinstance(args[0], (list, tuple, range)):
                raise Refused(f"the pickle builds a {func.__name__} from something not a list")
            if func in (set, frozenset, dict):
                for item in (args[0] if args else ()):
                    _check_key(item[0] if func is dict and isinstance(item, tuple) else item)
            return func(*args)
        if mod == LOSS_MODULE and func.__name__.startswith("__pyx_unpickle_Cy"):
            if not (len(args) == 3 and isinstance(args[0], type)
                    and args[0].__module__ == LOSS_MODULE and type(args[1]) is int
                    and isinstance(args[2], tuple) and all(map(is_plain, args[2]))):
                raise Refused(f"{func.__name__} is called with a state a loss never has")
            return func(*args)
        if (mod == LOSS_MODULE or f"{mod}.{func.__name__}" in SGD_LOSSES) \
                and isinstance(func, type):
            if not all(type(a) in (int, float) and math.isfinite(a) for a in args):
                raise Refused(f"{func.__name__} takes plain numbers")
            return func(*args)
        if mod == "sklearn.tree._tree" and func.__name__ == "Tree":
            return self._tree(func, *args)
        if mod in ("numpy.random.bit_generator",) or func.__name__ == "__bit_generator_ctor":
            return func(*args)
        if isinstance(func, type) and issubclass(func, (np.generic, np.ndarray)):
            raise Refused(f"the pickle calls {func.__name__} directly")
        if self._trusted(func):
            return func(*args)
        raise Refused(f"the pickle calls {getattr(func, '__qualname__', type(func).__name__)}, "
                      "which a model's pickle never calls")

    def _trusted(self, obj) -> bool:
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}" in self.extra

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def _python_class(self, cls) -> bool:
        """Whether cls is an allowed class built as a plain Python object (NEWOBJ)."""
        if not isinstance(cls, type) or id(cls) not in self.callables:
            return False
        full = f"{cls.__module__}.{cls.__qualname__}"
        if full == "sklearn.utils._bunch.Bunch":
            return True  # a dict with attribute access
        return (full in SKLEARN_CLASSES or full in SPARSE or self._trusted(cls)) \
            and cls.__new__ is object.__new__

    def _newobj(self, cls, *args):
        if not self._python_class(cls) or args:
            raise Refused(f"the pickle creates {getattr(cls, '__name__', type(cls).__name__)}"
                          " in a way a model's pickle never does")
        return cls.__new__(cls)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._newobj(cls, *args))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if kwargs:
            raise Refused("the pickle creates an object with keyword arguments")
        self.append(self._newobj(cls, *args))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _instantiate(self, klass, args):
        self.append(self._newobj(klass, *args))

    def _reconstructor(self, cls, base, state):
        if base is object and state is None:
            return self._newobj(cls)
        if base is dict and self._python_class(cls) and issubclass(cls, dict):
            return copyreg._reconstructor(cls, base, state if isinstance(state, dict) else {})
        raise Refused("the pickle rebuilds an object on a base a model's pickle never uses")

    # -- dict keys and set items: hashed, so plain (a shared nest of tuples hashes forever) --
    def load_setitem(self):
        _check_key(self.stack[-2])
        super().load_setitem()
    dispatch[pickle.SETITEM[0]] = load_setitem

    def _check_marked(self, step: int) -> None:
        """Check the keys among the items since the MARK (the pure-Python unpickler's own
        stack): every other item for key-value pairs, every item for set items."""
        for key in self.stack[::step]:
            _check_key(key)

    def load_setitems(self):
        self._check_marked(2)
        super().load_setitems()
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_dict(self):
        self._check_marked(2)
        super().load_dict()
    dispatch[pickle.DICT[0]] = load_dict

    def load_additems(self):
        self._check_marked(1)
        super().load_additems()
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def load_frozenset(self):
        for item in self.stack:  # the items since the MARK
            _check_key(item)
        super().load_frozenset()
    dispatch[pickle.FROZENSET[0]] = load_frozenset

    # -- memo: a pending dtype or array is swapped for the real one once built -------------
    def _remember(self, key):
        top = self.stack[-1]
        if isinstance(top, _Pending):
            self.pending_keys.setdefault(id(top), []).append(key)

    def load_binput(self):
        i = self.read(1)[0]
        self.memo[i] = self.stack[-1]
        self._remember(i)
    dispatch[pickle.BINPUT[0]] = load_binput

    def load_long_binput(self):
        i, = __import__("struct").unpack("<I", self.read(4))
        self.memo[i] = self.stack[-1]
        self._remember(i)
    dispatch[pickle.LONG_BINPUT[0]] = load_long_binput

    def load_memoize(self):
        i = len(self.memo)
        self.memo[i] = self.stack[-1]
        self._remember(i)
    dispatch[pickle.MEMOIZE[0]] = load_memoize

    def load_put_text(self):
        i = int(self.readline()[:-1])
        self.memo[i] = self.stack[-1]
        self._remember(i)
    dispatch[pickle.PUT[0]] = load_put_text

    # -- BUILD ----------------------------------------------------------------------------
    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        np = self.np
        if isinstance(inst, _Pending):
            real = self._finish(inst, state)
            for key in self.pending_keys.pop(id(inst), []):
                self.memo[key] = real
            self.stack[-1] = real
            return
        if id(inst) in self.built:
            raise Refused("the pickle sets an object's state twice")
        self.built.add(id(inst))
        if isinstance(inst, (np.ndarray, np.dtype, np.generic, type)) \
                or type(inst) in (list, dict, set, tuple):
            raise Refused(f"the pickle sets the raw state of a {type(inst).__name__}")
        name = f"{type(inst).__module__}.{type(inst).__qualname__}"
        if name == "sklearn.tree._tree.Tree":
            from .audit import check_tree_state
            check_tree_state(inst, state)
        elif name in ("sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree"):
            from .audit import check_index_state
            check_index_state(inst, state)
        elif name in METRICS:
            from .audit import check_metric_state
            check_metric_state(inst, state)
        elif name == "functools.partial":
            if not (isinstance(state, tuple) and len(state) == 4 and state[0] is inst.func
                    and state[1] == () and isinstance(state[2], dict) and state[3] is None):
                raise Refused("a partial's state is not one scikit-learn writes")
        elif type(inst).__module__.startswith("numpy.random"):
            pass  # a bit generator's state: NumPy checks every key and size itself
        elif not _attributes(state) and not (isinstance(state, tuple) and len(state) == 2
                                             and all(s is None or _attributes(s) for s in state)):
            raise Refused(f"the state of {type(inst).__name__} is not a dict of attributes "
                          "(or sets a dunder such as __class__)")
        self.stack.append(state)
        super().load_build()
    dispatch[pickle.BUILD[0]] = load_build

    def _finish(self, pending: _Pending, state):
        if pending.kind == "dtype":
            return self._make_dtype(pending.args, state)
        return self._make_array(state)

    # -- NumPy, rebuilt ---------------------------------------------------------------------
    def _dtype(self, obj, align=False, copy=False):
        if not isinstance(obj, str) or not (SIMPLE_DTYPE.fullmatch(obj)
                                            or re.fullmatch(r"V\d{1,4}", obj)):
            raise Refused("the pickle asks for a dtype no model holds")
        return _Pending("dtype", (obj,))

    def _make_dtype(self, args, state):
        np = self.np
        (obj,) = args
        if not isinstance(state, tuple) or len(state) not in (8, 9) \
                or state[2] is not None or (len(state) == 9 and state[8] is not None):
            raise Refused("a dtype's state is not one NumPy writes for a model's arrays")
        endian, names, fields, elsize = state[1], state[3], state[4], state[5]
        if endian not in ("<", ">", "|", "=") or type(elsize) is not int:
            raise Refused("a dtype's byte order or size is malformed")
        kind = obj[0]
        if kind == "V":
            made = self._structured(names, fields, elsize)
        elif names is not None or fields is not None:
            raise Refused("a plain dtype carries fields")
        elif kind == "O":
            made = np.dtype(object)
        elif kind in "US":
            width = elsize // (4 if kind == "U" else 1)
            if not 0 <= elsize <= MAX_TEXT_ITEM or width * (4 if kind == "U" else 1) != elsize:
                raise Refused("a text dtype's width is malformed")
            made = np.dtype(f"{'<' if endian == '|' else endian}{kind}{width}")
        else:
            made = np.dtype(("" if endian == "|" else endian) + obj)
            if made.itemsize != elsize and elsize != -1:
                raise Refused("a dtype's size does not match its kind")
        self.dtypes.add(id(made))
        return made

    def _structured(self, names, fields, elsize):
        np = self.np
        if not isinstance(names, tuple) or not isinstance(fields, dict) \
                or set(names) != set(fields) or not all(isinstance(n, str) for n in names):
            raise Refused("a structured dtype's fields are malformed")
        formats, offsets = [], []
        for n in names:
            f = fields[n]
            if not isinstance(f, tuple) or len(f) != 2 or id(f[0]) not in self.dtypes \
                    or type(f[1]) is not int or f[0].hasobject or f[0].names is not None:
                raise Refused(f"the field '{n[:40]}' of a structured dtype is malformed")
            if not 0 <= f[1] <= elsize - f[0].itemsize:
                raise Refused(f"the field '{n[:40]}' of a structured dtype lies past its item")
            formats.append(f[0])
            offsets.append(f[1])
        for known in _structured_dtypes():
            if known.names == names and known.itemsize == elsize and all(
                    known.fields[n][0] == fm and known.fields[n][1] == off
                    for n, fm, off in zip(names, formats, offsets)):
                self.dtypes.add(id(known))
                return known
        raise Refused("a structured dtype is none of those scikit-learn's trees use")

    def _checked_dtype(self, dtype):
        if id(dtype) not in self.dtypes:
            raise Refused("an array's dtype was not rebuilt from a checked descriptor")
        return dtype

    def _reconstruct(self, subtype, shape, typecode):
        if subtype is not self.np.ndarray:
            raise Refused("the pickle rebuilds an array of a type no model holds")
        return _Pending("array", ())

    def _make_array(self, state):
        np = self.np
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise Refused("an array's state is malformed")
        _, shape, dtype, fortran, raw = state
        count = _count(shape)
        dtype = self._checked_dtype(dtype)
        order = "F" if fortran else "C"
        if dtype.hasobject:
            if not isinstance(raw, list) or len(raw) != count:
                raise Refused("an object array's items do not match its shape")
            # an array inside (KBinsDiscretizer's edges) was itself built here, from checked state
            if not all(is_plain(v) or _is_estimator(v) or type(v) is np.ndarray for v in raw):
                raise Refused("an object array holds something other than plain values")
            arr = np.empty(count, dtype=object)
            arr[:] = raw
            return arr.reshape(shape, order=order)
        return self._from_bytes(raw, dtype, shape, order, count)

    def _from_bytes(self, raw, dtype, shape, order, count):
        np = self.np
        if not isinstance(raw, (bytes, bytearray)):
            raise Refused("an array's data is not bytes")
        if dtype.itemsize == 0 or len(raw) != count * dtype.itemsize:
            raise Refused(f"an array of shape {shape[:4]} needs {count * dtype.itemsize} bytes; "
                          f"the pickle carries {len(raw)}")
        return np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape, order=order)

    def _frombuffer(self, buf, dtype, shape, order):
        dtype = self._checked_dtype(dtype)
        if dtype.hasobject or order not in ("C", "F"):
            raise Refused("an array's buffer is malformed")
        return self._from_bytes(buf, dtype, shape, order, _count(shape))

    def _scalar(self, dtype, obj=None):
        np = self.np
        dtype = self._checked_dtype(dtype)
        if dtype.hasobject:
            if not is_plain(obj):
                raise Refused("an object scalar holds something other than a plain value")
            return obj
        if dtype.names is not None or not isinstance(obj, bytes) or len(obj) != dtype.itemsize:
            raise Refused("a scalar's bytes do not match its dtype")
        return np.frombuffer(obj, dtype=dtype)[0].copy()

    def _encode(self, obj, encoding="utf-8"):
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
            raise Refused("the pickle encodes something other than bytes")
        return obj.encode("latin1")

    # -- bounded builtins -----------------------------------------------------------------
    def _range(self, *args):
        r = range(*args)
        if len(r) > self.size:
            raise Refused(f"a range of {len(r)} items is more than the pickle's {self.size} bytes")
        return r

    def _bytes(self, arg=b"", *rest):
        if isinstance(arg, int) or not isinstance(arg, (bytes, bytearray, str, list, tuple, range)) \
                or len(arg) > self.size:
            raise Refused("the pickle asks for bytes it does not carry")
        return bytes(arg, *rest)

    def _bytearray(self, arg=b"", *rest):
        return bytearray(self._bytes(arg, *rest))

    # -- random generators, indexes, partial ----------------------------------------------
    def _bit_generator(self, name, ctor):
        real = getattr(importlib.import_module("numpy.random._pickle"), "__bit_generator_ctor")
        if isinstance(name, self.np.random.BitGenerator) and ctor is None:
            return name  # built by __bit_generator_ctor, itself checked
        if isinstance(name, type):
            name = name.__name__
        if name not in BIT_GENERATORS or ctor not in (None, real):
            raise Refused("a random generator names an unknown bit generator")
        return real(name)

    def _generator(self, name="MT19937", ctor=None):
        return self.np.random.Generator(self._bit_generator(name, ctor))

    def _randomstate(self, name="MT19937", ctor=None):
        return self.np.random.RandomState(self._bit_generator(name, ctor))

    def _new_index(self, cls):
        full = f"{getattr(cls, '__module__', '')}.{getattr(cls, '__qualname__', '')}"
        if full not in METRICS and full not in ("sklearn.neighbors._kd_tree.KDTree",
                                                "sklearn.neighbors._ball_tree.BallTree"):
            raise Refused(f"the pickle creates {full[:100]} in a way a model's pickle never does")
        return cls.__new__(cls)

    def _partial(self, func, *args, **kwargs):
        from functools import partial
        if not args and not kwargs:
            return partial.__new__(partial, func)  # state follows (BUILD), checked by the audit
        raise Refused("a partial is built in a way a model's pickle never does")

    def _tree(self, cls, n_features, n_classes, n_outputs):
        np = self.np
        if not (type(n_features) is int and type(n_outputs) is int
                and 0 < n_features <= 1 << 24 and 0 < n_outputs <= 1 << 16
                and isinstance(n_classes, np.ndarray) and n_classes.shape == (n_outputs,)
                and n_classes.dtype.kind in "iu" and (n_classes >= 1).all()
                and int(n_classes.max()) * n_outputs <= self.size):
            raise Refused("a tree's sizes are malformed")
        return cls(n_features, n_classes, n_outputs)


def _attributes(state) -> bool:
    """Whether state is a dict of attribute names, none a dunder (no __class__, __dict__)."""
    return isinstance(state, dict) and all(type(k) is str and not k.startswith("__")
                                           for k in state)


def _check_key(key) -> None:
    """Refuse a dict key or set item that is not a plain value or a flat tuple of them."""
    if not (is_plain(key) or isinstance(key, bytes)
            or (isinstance(key, tuple) and len(key) <= 64 and all(map(is_plain, key)))):
        raise Refused("a dictionary key or set item is not a plain value")


def _is_estimator(obj) -> bool:
    """Whether obj is a scikit-learn estimator (GradientBoosting keeps its trees in an array)."""
    from sklearn.base import BaseEstimator
    return isinstance(obj, BaseEstimator)


def restricted_loads(data: bytes, *, extra: frozenset[str] | tuple = frozenset()) -> object:
    """Given pickle bytes, return the object, rebuilt and audited; Refused (ForbiddenGlobal)
    if it is not a model's."""
    from .audit import audit
    obj = SafeUnpickler(io.BytesIO(data), size=len(data), extra=frozenset(extra)).load()
    audit(obj, extra=frozenset(extra))
    return obj
