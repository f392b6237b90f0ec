"""Why the model answered what it did, per row.

Owns: for decision trees, the decision path in readable steps (with the share of the
answer, or the value, before and after each step), each feature's contribution along that
path (the base value plus the contributions equals the prediction), the training samples
in the leaf, and for classifiers what would change the answer: per measurement on the
path, the smallest change of that one measurement that makes the tree answer something
else, found exactly from the tree. For linear models, each feature's contribution to the
decision function. Tree ensembles and pipelines whose encoded columns fold back to their
inputs: explain_ensemble.py. Other estimators get no explanation.
"""
from __future__ import annotations

import numpy as np

from . import explain_ensemble


def _final_step(estimator):
    steps = getattr(estimator, "steps", None)
    return (estimator[:-1], steps[-1][1]) if steps else (None, estimator)


def explain_rows(estimator, X: np.ndarray, names: list[str], predicted: list) -> list[dict | None]:
    """Given the estimator, its input rows and its predictions, return one explanation per row."""
    head, final = _final_step(estimator)
    others = explain_ensemble.explain(estimator, X, names, predicted)
    if others is not None:  # tree ensembles; pipelines whose encoded columns fold back
        return others
    if hasattr(final, "tree_") and head is None:
        return _tree(final, X, names, predicted)
    if hasattr(final, "coef_") and hasattr(final, "intercept_"):
        Z = head.transform(X) if head is not None else X
        Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z, dtype=float)
        if Z.shape[1] == len(names):
            return _linear(final, Z, names, predicted)
    return [None] * len(X)


def _contribution_list(names: list[str], values: np.ndarray) -> list[dict]:
    pairs = [(n, v) for n, v in zip(names, values.tolist()) if v != 0]
    pairs.sort(key=lambda p: -abs(p[1]))  # stable: equal sizes keep the feature order
    return [{"feature": n, "contribution": v} for n, v in pairs]


def _tree(tree_model, X, names, predicted) -> list[dict]:
    tree = tree_model.tree_
    X = np.asarray(X, dtype=float)
    classes = getattr(tree_model, "classes_", None)
    values = tree.value[:, 0, :]
    if classes is not None:
        values = values / values.sum(axis=1, keepdims=True)
    # Plain lists: indexing them per node is far cheaper than indexing numpy arrays.
    by_class = values.T.tolist()
    feature, threshold = tree.feature.tolist(), tree.threshold.tolist()
    left = tree.children_left.tolist()
    paths = tree_model.decision_path(X)
    leaves = tree_model.apply(X).tolist()
    samples = tree.weighted_n_node_samples.tolist()
    out = []
    for i, label in enumerate(predicted):
        k = int(np.flatnonzero(classes == label)[0]) if classes is not None else 0
        value = by_class[k]
        row = X[i].tolist()
        nodes = sorted(paths.indices[paths.indptr[i]:paths.indptr[i + 1]].tolist())
        contrib = np.zeros(len(names))  # node ids grow with depth: `nodes` runs root to leaf
        steps = []
        for parent, child in zip(nodes[:-1], nodes[1:]):
            j, cut = feature[parent], threshold[parent]
            contrib[j] += value[child] - value[parent]
            went_left = child == left[parent]
            steps.append({"feature": names[j], "op": "<=" if went_left else ">",
                          "threshold": cut, "value": row[j],
                          "before": value[parent], "after": value[child],
                          "text": f"{names[j]} is {row[j]:.4g}, "
                                  f"{'at most' if went_left else 'above'} {cut:.4g}"})
        explanation = {"method": "decision_path",
                       "space": "probability" if classes is not None else "value",
                       "target": label, "base_value": value[nodes[0]],
                       "contributions": _contribution_list(names, contrib), "path": steps,
                       "leaf": _leaf(tree, leaves[i], samples, classes)}
        out.append(explanation)
    if classes is not None:
        changes = _all_changes(tree_model, X, names, [e["path"] for e in out], list(predicted))
        for explanation, row_changes in zip(out, changes):
            explanation["changes"] = row_changes
    return out


def _leaf(tree, node: int, samples: list, classes) -> dict:
    """Given a leaf, return how many training samples ended there (per class, if any)."""
    leaf = {"samples": int(round(samples[node]))}
    if classes is not None:
        shares = tree.value[node, 0, :] / tree.value[node, 0, :].sum()
        leaf["counts"] = {str(c): int(round(s * samples[node])) for c, s in zip(classes, shares)}
    return leaf


def _nearest_readable(cut: float, low: float, high: float, x: float, *, above: bool) -> float:
    """Return a short decimal just past a tree threshold on one side, within (low, high].

    Trees compare float32 inputs with float64 thresholds, and (low, high] is the stretch
    before the next threshold on that measurement, so the tree's answer for the returned
    value is the one for every value just past the cut. It stays within a tenth of the
    distance from the row's value x to the cut, so the change is close to the smallest,
    and reads "112.78", not "112.79999923706055"."""
    magnitude = int(np.floor(np.log10(abs(cut)))) if cut else 0
    near = abs(x - cut) / 10
    for digits in range(3, 18):
        scale = 10.0 ** (digits - 1 - magnitude)
        step = np.ceil(cut * scale) if above else np.floor(cut * scale)
        if above and step / scale <= cut:  # a cut with few digits, like 1.75: go one past it
            step += 1
        candidate = float(step / scale)
        seen = float(np.float32(candidate))
        if ((cut < seen <= high) if above else (low < seen <= cut)) and \
                abs(candidate - cut) <= near:
            return candidate
    # Two thresholds closer than 4 figures: the next float32, written as short as it reads.
    return float(str(np.nextafter(np.float32(cut), np.float32(np.inf if above else -np.inf))))


def _side_value(cut: float, *, above: bool) -> float:
    """Return the value nearest a threshold that the tree sends to one side of it (trees
    compare float32 inputs with float64 thresholds)."""
    seen = np.float32(cut)
    if above and float(seen) <= cut:
        seen = np.nextafter(seen, np.float32(np.inf))
    elif not above and float(seen) > cut:
        seen = np.nextafter(seen, np.float32(-np.inf))
    return float(seen)


def _all_changes(tree_model, X: np.ndarray, names: list[str], paths: list[list[dict]],
                 labels: list) -> list[list[dict]]:
    """Given rows, their paths and answers, return per row and per path feature the smallest
    change of that one measurement that makes the tree answer another class, smallest
    relative change first.

    The leaf depends only on the measurements tested on the path, so trying each side of
    every threshold the tree has for one of them (the others fixed) covers every answer
    that changing it alone can give. Every try of every row goes through one predict call;
    only each winner is then written as a short decimal, in the same stretch between
    thresholds, so the tree's answer for it is the same."""
    tree = tree_model.tree_
    cuts = {j: np.unique(tree.threshold[tree.feature == j]).tolist()
            for j in set(tree.feature.tolist()) if j >= 0}
    sides = {j: [(_side_value(c, above=True), _side_value(c, above=False)) for c in cs]
             for j, cs in cuts.items()}
    tries = []  # (row, feature, cut index, above, value)
    for i, steps in enumerate(paths):
        x = X[i]
        for j in dict.fromkeys(names.index(s["feature"]) for s in steps):
            for k, c in enumerate(cuts[j]):
                above = bool(x[j] <= c)  # only crossing a cut changes a test
                tries.append((i, j, k, above, sides[j][k][0 if above else 1]))
    if not tries:
        return [[] for _ in paths]
    rows = np.array([t[0] for t in tries])
    grid = X[rows].copy()
    grid[np.arange(len(tries)), [t[1] for t in tries]] = [t[4] for t in tries]
    answers = tree_model.predict(grid).tolist()
    best: dict[tuple[int, int], tuple] = {}
    for (i, j, k, above, value), answer in zip(tries, answers):
        if answer == labels[i]:
            continue
        distance = abs(value - X[i, j])
        if (i, j) not in best or distance < best[(i, j)][0]:
            best[(i, j)] = (distance, k, above, answer)
    out = [[] for _ in paths]
    for (i, j), (_, k, above, answer) in best.items():
        bounds = [-np.inf, *cuts[j], np.inf]
        x, cut = float(X[i, j]), cuts[j][k]
        out[i].append({"feature": names[j], "from": x,
                       "to": _nearest_readable(cut, bounds[k], bounds[k + 2], x, above=above),
                       "op": ">" if above else "<=", "threshold": cut,
                       "label": answer.item() if hasattr(answer, "item") else answer})
    for changes in out:
        changes.sort(key=lambda c: abs(c["to"] - c["from"]) / (abs(c["from"]) or 1.0))
    return out


def _linear(linear_model, Z, names, predicted) -> list[dict]:
    coef = np.atleast_2d(linear_model.coef_)
    intercept = np.atleast_1d(linear_model.intercept_)
    classes = getattr(linear_model, "classes_", None)
    out = []
    for i, label in enumerate(predicted):
        if classes is None:
            row, sign, space = 0, 1.0, "value"
        elif len(coef) == 1:  # binary: one decision function, positive for classes_[1]
            row, sign, space = 0, (1.0 if label == classes[1] else -1.0), "log-odds"
        else:
            row, sign, space = int(np.flatnonzero(classes == label)[0]), 1.0, "log-odds"
        out.append({"method": "linear", "space": space, "target": label,
                    "base_value": float(sign * intercept[row]),
                    "contributions": _contribution_list(names, sign * coef[row] * Z[i])})
    return out
