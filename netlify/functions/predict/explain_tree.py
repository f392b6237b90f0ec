"""A single decision tree's explanation, per row, from facts worked out once per model.

Owns: for decision trees, the decision path in readable steps (with the share of the
answer, or the value, before and after each step), each feature's contribution along that
path (the base value plus the contributions equals the prediction), the training samples
in the leaf, and for classifiers what would change the answer: per measurement on the
path, the smallest change of that one measurement that makes the tree answer something
else, found exactly from the tree.

Everything that depends only on the tree (each leaf's path, shares, contributions and
counts, already written as JSON; each threshold and the short decimals just past it) is
built once per fitted tree and kept in `facts()`; a request then only finds its rows'
leaves, with one walk for the rows and one for all the changes tried, and writes the rows'
own values into the leaf's JSON. Explanations are returned as `JsonText`: an answer of
1,000 rows holds some 36,000 numbers, and writing each anew took half the request's time.
"""
from __future__ import annotations

import threading
import weakref
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from .web import JsonText, dumps

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _nearest_readable_candidates(cut: float, low: float, high: float, *,
                                 above: bool) -> tuple[list[tuple[float, float]], float]:
    """Return the short decimals just past a tree threshold on one side, within (low, high],
    shortest first, each with its distance to the cut; and the value to use when none is
    near enough (see `_changes`)."""
    magnitude = int(np.floor(np.log10(abs(cut)))) if cut else 0
    candidates = []
    for digits in range(3, 18):
        scale = 10.0 ** (digits - 1 - magnitude)
        step = np.ceil(cut * scale) if above else np.floor(cut * scale)
        if above and step / scale <= cut:  # a cut with few digits, like 1.75: go one past it
            step += 1
        candidate = float(step / scale)
        seen = float(np.float32(candidate))
        if (cut < seen <= high) if above else (low < seen <= cut):
            candidates.append((candidate, abs(candidate - cut)))
    # Two thresholds closer than 4 figures: the next float32, written as short as it reads.
    fallback = float(str(np.nextafter(np.float32(cut), np.float32(np.inf if above else -np.inf))))
    return candidates, fallback


def _side_value(cut: float, *, above: bool) -> float:
    """Return the value nearest a threshold that the tree sends to one side of it (trees
    compare float32 inputs with float64 thresholds)."""
    seen = np.float32(cut)
    if above and float(seen) <= cut:
        seen = np.nextafter(seen, np.float32(np.inf))
    elif not above and float(seen) > cut:
        seen = np.nextafter(seen, np.float32(-np.inf))
    return float(seen)


def _text(value) -> str:
    """Return a value as JSON, ready to stand in a %-format."""
    return dumps(value).replace("%", "%%")


def _contribution_pairs(names: list[str], values: np.ndarray) -> list[tuple[str, float]]:
    pairs = [(n, v) for n, v in zip(names, values.tolist()) if v != 0]
    pairs.sort(key=lambda p: -abs(p[1]))  # stable: equal sizes keep the feature order
    return pairs


class Leaf(NamedTuple):
    """One leaf's part of every explanation that ends there."""
    steps: list[tuple]  # (feature index, name, op, threshold, node, next node, end of text)
    samples: int
    counts: tuple | None  # (class as text, training samples) per class, for classifiers
    contributions: list[list[tuple[str, float]]]  # per class (or the one value): (name, v)


class TreeFacts:
    """What one fitted tree's explanations need that no row changes, worked out once (each
    leaf's part when a row first ends there)."""

    def __init__(self, tree_model, names: list[str]):
        tree = self.tree = tree_model.tree_
        self.names = list(names)
        self.classes = getattr(tree_model, "classes_", None)
        values = tree.value[:, 0, :]
        if self.classes is not None:
            values = values / values.sum(axis=1, keepdims=True)
        self.by_class = values.T.tolist()  # per class, per node: the share (or the value)
        self.feature, self.threshold = tree.feature.tolist(), tree.threshold.tolist()
        self.left, right = tree.children_left.tolist(), tree.children_right.tolist()
        self.parent = [-1] * tree.node_count
        for node in range(tree.node_count):
            if self.left[node] >= 0:
                self.parent[self.left[node]] = self.parent[right[node]] = node
        self.samples = tree.weighted_n_node_samples.tolist()
        self._leaves: dict[int, Leaf] = {}
        self._forms: dict[tuple, tuple[str, list[int]]] = {}
        self._change_forms: dict[int, str] = {}
        if self.classes is not None:
            self.class_index = {c: k for k, c in enumerate(self.classes.tolist())}
            self.class_list = self.classes.tolist()
            self.leaf_class = np.argmax(tree.value[:, 0, :], axis=1)  # as predict() picks
            self._change_facts(tree, right)

    def leaf(self, node: int) -> Leaf:
        """Return a leaf's part of the explanation, worked out when first asked."""
        found = self._leaves.get(node)
        if found is None:
            found = self._leaves[node] = self._leaf(node)
        return found

    def form(self, node: int, k: int, target: str) -> tuple[str, list[int]]:
        """Return the explanation of a row that ends at this leaf with answer k (target: the
        answer as JSON) as a %-format of the row's values, up to its changes, and the
        measurement each value is; worked out when first asked."""
        key = (node, k, target)
        found = self._forms.get(key)
        if found is None:
            leaf, share = self.leaf(node), self.by_class[k]
            space = "value" if self.classes is None else "probability"
            steps = ["{" + f'"feature":{_text(name)},"op":{_text(op)},"threshold":{_text(cut)},'
                     f'"value":%r,"before":{_text(share[up])},"after":{_text(share[down])},'
                     f'"text":{_text(f"{name} is ")[:-1]}%.4g{_text(f", {tail}")[1:]}' + "}"
                     for j, name, op, cut, up, down, tail in leaf.steps]
            counts = {} if leaf.counts is None else {"counts": dict(leaf.counts)}
            head = _text({"method": "decision_path", "space": space, "target": JsonText(target),
                          "base_value": share[0],
                          "contributions": [{"feature": n, "contribution": v}
                                            for n, v in leaf.contributions[k]]})
            found = self._forms[key] = (
                head[:-1] + ',"path":[' + ",".join(steps) + '],"leaf":'
                + _text({"samples": leaf.samples, **counts}),
                [j for j, *_ in leaf.steps for _ in range(2)])  # value and text
        return found

    def change_forms(self, keys: list[int]) -> list[str]:
        """Given change keys (see `_changes`: the short decimal it goes to, at row cut of the
        table, upwards or not, and the class index of the answer it gives), return each change
        as a %-format of its from value; each worked out when first asked."""
        forms = self._change_forms
        for key in set(keys).difference(forms):
            flat, label = divmod(key, len(self.class_list))
            cut, up = divmod(flat // self.readable.shape[2], 2)
            forms[key] = (
                f'{{"feature":{_text(self.names[self.cut_feature[cut]])},"from":%r,'
                f'"to":{float(self.readable.flat[flat])!r},'
                f'"op":{_text(">" if up else "<=")},"threshold":{_text(self.cut_value[cut])},'
                f'"label":{_text(self.class_list[label])}}}')
        return [forms[key] for key in keys]

    def _leaf(self, node: int) -> Leaf:
        nodes = [node]
        while self.parent[nodes[-1]] >= 0:
            nodes.append(self.parent[nodes[-1]])
        nodes.sort()  # node ids grow with depth: root to leaf
        steps = []
        for up, down in zip(nodes[:-1], nodes[1:]):
            j, cut, went_left = self.feature[up], self.threshold[up], down == self.left[up]
            steps.append((j, self.names[j], "<=" if went_left else ">", cut, up, down,
                          f"{'at most' if went_left else 'above'} {cut:.4g}"))
        counts = None
        if self.classes is not None:
            value = self.tree.value[node, 0, :]
            shares = value / value.sum()
            counts = tuple((str(c), int(round(s * self.samples[node])))
                           for c, s in zip(self.classes, shares))
        contributions = []
        for value in self.by_class:
            contrib = np.zeros(len(self.names))
            for up, down in zip(nodes[:-1], nodes[1:]):
                contrib[self.feature[up]] += value[down] - value[up]
            contributions.append(_contribution_pairs(self.names, contrib))
        return Leaf(steps, int(round(self.samples[node])), counts, contributions)

    def _change_facts(self, tree, right: list[int]) -> None:
        """One table of every threshold (per measurement the tree tests, its distinct cuts in
        order): the value just past each on both sides and the short decimals there; and per
        node, the depth at which its path first tests each measurement."""
        cuts: dict[int, list[float]] = {}  # per measurement
        table = []  # (feature, cut, just above, at or just below)
        for j in sorted({f for f in self.feature if f >= 0}):
            cuts[j] = np.unique(tree.threshold[tree.feature == j]).tolist()
            table += [(j, c, _side_value(c, above=True), _side_value(c, above=False))
                      for c in cuts[j]]
        columns = [np.array(column) for column in zip(*table)] or [np.array([], dtype=int)] * 4
        self.cut_feature, self.cut_value, self.cut_up, self.cut_down = columns
        # Per threshold and side (0: at or below, 1: above), its short decimals and their
        # distances (padded with inf), and the value to use when none is near enough.
        sides = []
        for in_order in cuts.values():
            bounds = [-np.inf, *in_order, np.inf]
            sides += [[_nearest_readable_candidates(c, bounds[k], bounds[k + 2], above=above)
                       for above in (False, True)] for k, c in enumerate(in_order)]
        width = max([len(c) for pair in sides for c, _ in pair], default=0) + 1
        self.readable = np.full((len(sides), 2, width), np.nan)
        self.readable_distance = np.full((len(sides), 2, width), np.inf)
        for i, pair in enumerate(sides):
            for up, (shortest, fallback) in enumerate(pair):
                self.readable[i, up, :len(shortest)] = [c for c, _ in shortest]
                self.readable_distance[i, up, :len(shortest)] = [d for _, d in shortest]
                self.readable[i, up, len(shortest):] = fallback  # always "near enough"
                self.readable_distance[i, up, -1] = -np.inf
        # Per node and measurement, the depth at which its path first tests it (the order of
        # the path's measurements), or the tree's node count where it does not.
        self.first_test = np.full((tree.node_count, max(cuts, default=0) + 1),
                                  tree.node_count)
        depth = [0] * tree.node_count
        for node in range(tree.node_count):  # a parent comes before its children
            if self.left[node] >= 0:
                for child in (self.left[node], right[node]):
                    depth[child] = depth[node] + 1
                    self.first_test[child] = self.first_test[node]
                    j = self.feature[node]
                    self.first_test[child, j] = min(self.first_test[node, j], depth[node])
        self.tries = self.first_test[:, self.cut_feature] < tree.node_count  # thresholds to try


def facts(tree_model, names: list[str]) -> TreeFacts:
    """Return the tree's facts for these feature names: built on first use, kept while the
    model lives."""
    found = _cache.get(tree_model)
    if found is None or found.names != names:
        with _cache_lock:
            found = _cache.get(tree_model)
            if found is None or found.names != names:
                found = _cache[tree_model] = TreeFacts(tree_model, names)
    return found


def explain(tree_model, X: np.ndarray, names: list[str], predicted: list) -> list[JsonText]:
    """Given a fitted tree, validated rows, the names of their columns and the tree's answers,
    return one explanation per row, written as JSON."""
    known = facts(tree_model, names)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != known.tree.n_features:  # the walk itself checks nothing
        raise ValueError(f"X has {X.shape[-1]} features; the tree takes {known.tree.n_features}")
    if not np.isfinite(X).all():  # the API takes finite values only; JSON has no NaN
        raise ValueError("X has values that are not finite")
    # The tree's own walk without its input checks: the rows are validated, and cast to the
    # float32 the tree compares as its checks would cast them.
    leaves = known.tree.apply(np.asarray(X, dtype=np.float32)).tolist()
    classifier = known.classes is not None
    ks = [known.class_index[label] for label in predicted] if classifier else [0] * len(X)
    rows = X.tolist()
    changes = _changes(known, X, leaves, ks) if classifier else ["}"] * len(rows)
    # Per leaf, its %-format and the getter of the row's values it takes. A tree's answer is
    # its leaf's (the class it picks, or its value), so the leaf alone keys the answer's text.
    forms: dict = {}
    out = []
    for row, node, k, label, tail in zip(rows, leaves, ks, predicted, changes):
        found = forms.get(node)
        if found is None:
            form, slots = known.form(node, k, dumps(label))
            found = forms[node] = (form, itemgetter(*slots) if slots else _nothing)
        form, values = found
        out.append(JsonText(form % values(row) + tail))
    return out


def _nothing(row: list) -> tuple:
    """The values a leaf's format takes from a row when it is the root (no step): none."""
    return ()


def _changes(known: TreeFacts, X: np.ndarray, leaves: list[int], ks: list[int]) -> list[str]:
    """Given rows, their leaves and answers, return per row the end of its explanation: its
    "changes", per path feature the smallest change of that one measurement that makes the
    tree answer another class, smallest relative change first.

    The leaf depends only on the measurements tested on the path, so trying each side of
    every threshold the tree has for one of them (the others fixed) covers every answer
    that changing it alone can give. Every try of every row goes through one walk of the
    tree; only each winner is then written as a short decimal, in the same stretch between
    thresholds, so the tree's answer for it is the same."""
    # Tries in order: by row, then feature, then cut, for the features the row's path tests.
    row, cut = np.nonzero(known.tries[leaves])
    out = [',"changes":[]}'] * len(X)
    if not row.size:
        return out
    feature = known.cut_feature[cut]
    x = X[row, feature]
    above = x <= known.cut_value[cut]  # only crossing a cut changes a test
    tried = np.where(above, known.cut_up[cut], known.cut_down[cut])
    grid = X[row]
    grid[np.arange(len(row)), feature] = tried
    answer = known.leaf_class[known.tree.apply(np.asarray(grid, dtype=np.float32))]
    other = answer != np.array(ks)[row]
    distance = np.where(other, np.abs(tried - x), np.inf)
    # Per (row, feature) run of tries: the nearest that answers otherwise, the first of equals.
    first = np.ones(len(row), dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (feature[1:] != feature[:-1])
    group = np.cumsum(first) - 1
    nearest = np.minimum.reduceat(distance, np.flatnonzero(first))
    candidates = np.flatnonzero(other & (distance == nearest[group]))
    firsts = np.ones(len(candidates), dtype=bool)
    firsts[1:] = group[candidates[1:]] != group[candidates[:-1]]
    best = candidates[firsts]
    # Each winner as a short decimal: the first (shortest) within a tenth of the distance
    # from the row's value to the cut, which keeps the change close to the smallest and reads
    # "112.78", not "112.79999923706055". Every short decimal lies before the next threshold
    # on that measurement, so the tree's answer for it is the one for every value just past
    # the cut (trees compare float32 inputs with float64 thresholds).
    i, cut, up, x = row[best], cut[best], above[best].astype(int), x[best]
    near = np.abs(x - known.cut_value[cut]) / 10
    pick = np.argmax(known.readable_distance[cut, up] <= near[:, None], axis=1)
    flat = (cut * 2 + up) * known.readable.shape[2] + pick  # the short decimal, in the table
    to = known.readable.flat[flat]
    # Per row, smallest relative change first; equal ones in the order the path tests them.
    relative = np.abs(to - x) / np.where(x != 0, np.abs(x), 1.0)
    order = np.lexsort((known.first_test[np.array(leaves)[i], known.cut_feature[cut]],
                        relative, i))
    # Each change's text, the short decimal already written in it, as a %-format of the
    # row's value; one format per row (its changes are one run of the order).
    forms = known.change_forms((flat * len(known.class_list) + answer[best])[order].tolist())
    values = x[order].tolist()
    rows = i[order].tolist()
    starts = [n for n, (before, r) in enumerate(zip([-1, *rows], rows)) if r != before]
    for a, b in zip(starts, starts[1:] + [len(forms)]):
        out[rows[a]] = (',"changes":[' + ",".join(forms[a:b]) + "]}") % tuple(values[a:b])
    return out
