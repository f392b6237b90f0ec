"""Explanations checked against references they do not compute, over a matrix of estimators x
label kinds (binary, multi-class, regression), each model packaged with the README's command
and asked through the handler:

- tree ensembles: `shap.TreeExplainer(model).shap_values(X, approximate=True)` (the path
  method, Saabas) and its expected value; where shap has no such explainer (gradient boosting
  over several classes), each tree walked by hand with every node valued by the training rows
  that reach it, and the base value as the mean raw score over the training rows;
- linear models, alone or after steps that are affine (scalers, PCA) or encode each input on
  its own (one-hot, bins): the estimator's own score with one input at a time set to the
  typical case (the manifest's defaults);
- anything else: null, never contributions under the wrong names.
"""
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor,
                              GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (KBinsDiscretizer, OneHotEncoder, PolynomialFeatures,
                                   StandardScaler)
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

import fitted
import package_model
from support import call, event

shap = pytest.importorskip("shap")

NUMERIC = ["rooms", "area", "oslo"]
FRAME = ["rooms", "area", "city"]
# Per label kind: the target column and, for trees, a classifier or a regressor.
LABELS = {"binary": "dear", "multi-class": "band", "regression": "price"}


def table() -> pd.DataFrame:
    """The seeded houses, with a three-class target (price band) and a 0/1 city column."""
    t = fitted.houses()
    band = pd.qcut(t["price"], 3, labels=["low", "mid", "high"]).astype(str)
    return t.assign(band=band, oslo=(t["city"] == "Oslo").astype(int))


TREES = {
    "random-forest": lambda c: (RandomForestClassifier if c else RandomForestRegressor)(
        n_estimators=8, max_depth=4, random_state=0),
    "extra-trees": lambda c: (ExtraTreesClassifier if c else ExtraTreesRegressor)(
        n_estimators=8, max_depth=4, random_state=0),
    "gradient-boosting": lambda c: (GradientBoostingClassifier if c else GradientBoostingRegressor)(
        n_estimators=12, max_depth=3, random_state=0),
    "hist-boosting": lambda c: (HistGradientBoostingClassifier if c else
                                HistGradientBoostingRegressor)(max_iter=12, max_leaf_nodes=8,
                                                               random_state=0),
}


def _by_name():
    return ColumnTransformer([("scale", StandardScaler(), ["rooms", "area"]),
                              ("onehot", OneHotEncoder(handle_unknown="ignore"), ["city"])])


# Linear models and others: (estimator, features, label kind).
OTHERS = {
    "pca-logistic": (lambda: make_pipeline(PCA(n_components=3), LogisticRegression()),
                     NUMERIC, "binary"),
    "onehot-logistic": (lambda: make_pipeline(_by_name(), LogisticRegression()), FRAME,
                        "multi-class"),
    "onehot-ridge": (lambda: make_pipeline(_by_name(), Ridge()), FRAME, "regression"),
    "scaled-linear-svc": (lambda: make_pipeline(StandardScaler(), LinearSVC()), NUMERIC,
                          "binary"),
    "polynomial-1-linear": (lambda: make_pipeline(PolynomialFeatures(1), LinearRegression()),
                            NUMERIC, "regression"),
    "binned-ridge": (lambda: make_pipeline(KBinsDiscretizer(n_bins=4, strategy="uniform"),
                                           Ridge()), NUMERIC, "regression"),
    "onehot-forest": (lambda: make_pipeline(_by_name(), RandomForestRegressor(
        n_estimators=8, max_depth=4, random_state=0)), FRAME, "regression"),
    "polynomial-2-logistic": (lambda: make_pipeline(StandardScaler(), PolynomialFeatures(2),
                                                    LogisticRegression()), NUMERIC, "binary"),
    "pca-forest": (lambda: make_pipeline(PCA(n_components=3), RandomForestClassifier(
        n_estimators=5, random_state=0)), NUMERIC, "binary"),
    "rbf-svc": (lambda: SVC(), NUMERIC, "binary"),
}
LINEAR = ["pca-logistic", "onehot-logistic", "onehot-ridge", "scaled-linear-svc",
          "polynomial-1-linear", "binned-ridge"]
UNEXPLAINED = ["polynomial-2-logistic", "pca-forest", "rbf-svc"]


@pytest.fixture(autouse=True)
def one_thread():
    """Histogram boosting's OpenMP threads, on a machine whose few cores are busy, made packaging
    (permutation importance: 150 predictions) 30 times slower; the answers are the same."""
    with threadpool_limits(limits=1):
        yield


class Served:
    """A fitted model, packaged into a folder, with its reference rows and what was served."""

    def __init__(self, folder, estimator, features, target):
        t = table()
        estimator.fit(t[features], t[target])
        fit = fitted._save(folder, estimator, t, target, how="pickle", features=features)
        self.out = folder / "served"
        self.manifest = package_model.package(fit.model_file, fit.data_file, self.out,
                                              target=target, name=folder.name)
        self.estimator, self.frame = estimator, fit.frame

    def answer(self, monkeypatch) -> dict:
        monkeypatch.setenv("MODEL_DIR", str(self.out))
        status, _, body = call(event("POST", "/api/predict",
                                     body={"instances": fitted.rows(self.frame)}))
        assert status == 200, body
        return body


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """Package each model of the matrix once, when a test first asks for it."""
    made: dict = {}

    def get(name: str) -> Served:
        if name not in made:
            folder = tmp_path_factory.mktemp(name)
            if name in OTHERS:
                build, features, labels = OTHERS[name]
                made[name] = Served(folder, build(), features, LABELS[labels])
            else:
                estimator, labels = name.split(":")
                made[name] = Served(folder, TREES[estimator](labels != "regression"), NUMERIC,
                                    LABELS[labels])
        return made[name]
    return get


def contributions(result: dict, names: list[str]) -> np.ndarray:
    got = {c["feature"]: c["contribution"] for c in result["explanation"]["contributions"]}
    assert set(got) <= set(names)
    return np.array([got.get(n, 0.0) for n in names])


def turned(values: np.ndarray, classes, predicted: list) -> np.ndarray:
    """A binary model's one score per row, turned towards each row's predicted label."""
    return values * np.where(np.asarray(predicted, dtype=object) == classes[1], 1.0, -1.0)


def shap_reference(estimator, X: pd.DataFrame, predicted: list):
    """Return shap's (contributions, base value) per row, for each row's predicted label."""
    explainer = shap.TreeExplainer(estimator, model_output="raw") \
        if "HistGradient" in type(estimator).__name__ else shap.TreeExplainer(estimator)
    values = np.asarray(explainer.shap_values(X, approximate=True))
    expected = np.ravel(explainer.expected_value)
    classes = getattr(estimator, "classes_", None)
    if values.ndim == 3:  # rows x features x classes
        k = np.array([list(classes).index(p) for p in predicted])
        return values[np.arange(len(X)), :, k], expected[k]
    if classes is not None:  # binary, one score for classes_[1]
        return turned(values.T, classes, predicted).T, turned(expected[0], classes, predicted)
    return values, np.full(len(X), expected[0])


def walked_reference(estimator, X: pd.DataFrame, train: pd.DataFrame, predicted: list):
    """Saabas by hand for gradient boosting over several classes: each tree of the predicted
    class walked from its root; each node valued by the mean of the tree's own predictions
    over the training rows that reach it; the base value is the mean raw score over the
    training rows."""
    k = np.array([list(estimator.classes_).index(p) for p in predicted])
    Xa, Ta = X.to_numpy(dtype=np.float32), train.to_numpy(dtype=np.float32)
    parts = np.zeros(X.shape)
    for stage in estimator.estimators_:
        for c in np.unique(k):
            tree_model = stage[c]
            tree = tree_model.tree_
            reach = tree_model.decision_path(Ta).toarray().astype(bool)  # training rows x nodes
            leaf_value = tree_model.predict(Ta)
            node_value = [leaf_value[reach[:, n]].mean() for n in range(tree.node_count)]
            for i in np.flatnonzero(k == c):
                node = 0
                while tree.children_left[node] >= 0:
                    f = tree.feature[node]
                    nxt = tree.children_left[node] if Xa[i, f] <= tree.threshold[node] \
                        else tree.children_right[node]
                    parts[i, f] += estimator.learning_rate * (node_value[nxt] - node_value[node])
                    node = nxt
    return parts, estimator.decision_function(train).mean(axis=0)[k]


TREE_CELLS = [f"{e}:{labels}" for e in TREES for labels in LABELS]


@pytest.mark.parametrize("cell", TREE_CELLS)
def test_tree_ensemble_contributions_are_shaps_path_contributions(served, monkeypatch, cell):
    model = served(cell)
    body = model.answer(monkeypatch)
    names = list(model.frame.columns)
    predicted = body["predictions"]
    if cell == "gradient-boosting:multi-class":  # shap: "only supported for binary"
        expected, base = walked_reference(model.estimator, model.frame, model.frame, predicted)
    else:
        expected, base = shap_reference(model.estimator, model.frame, predicted)
    got = np.array([contributions(r, names) for r in body["results"]])
    np.testing.assert_allclose(got, expected, atol=1e-9, rtol=1e-9)
    np.testing.assert_allclose([r["explanation"]["base_value"] for r in body["results"]],
                               base, atol=1e-9, rtol=1e-9)
    assert {r["explanation"]["method"] for r in body["results"]} == {"tree_paths"}
    assert [r["explanation"]["target"] for r in body["results"]] == predicted


@pytest.mark.parametrize("name", LINEAR)
def test_linear_contributions_are_each_input_against_the_typical_case(served, monkeypatch, name):
    """Input j's contribution is the score minus the score with j set to its default; the
    base value is the score of the all-default row."""
    model = served(name)
    body = model.answer(monkeypatch)
    est, frame = model.estimator, model.frame
    names = list(frame.columns)
    defaults = {f["name"]: f["default"] for f in model.manifest["features"]}
    typical = pd.DataFrame([defaults])[names].astype(frame.dtypes.to_dict())
    classes = getattr(est, "classes_", None)
    targets = [r["explanation"]["target"] for r in body["results"]]
    assert {r["explanation"]["method"] for r in body["results"]} == {"linear"}
    full = _scores_of(est, frame, targets, classes)
    expected = np.array([full - _scores_of(est, frame.assign(**{n: typical[n].iloc[0]}), targets,
                                           classes) for n in names]).T
    got = np.array([contributions(r, names) for r in body["results"]])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    base = _scores_of(est, pd.concat([typical] * len(frame), ignore_index=True), targets, classes)
    np.testing.assert_allclose([r["explanation"]["base_value"] for r in body["results"]], base,
                               atol=1e-9)


def _scores_of(estimator, X: pd.DataFrame, targets: list, classes) -> np.ndarray:
    """Per row, the estimator's own score of that row's explained label."""
    if classes is None:
        return estimator.predict(X)
    raw = estimator.decision_function(X)
    if raw.ndim == 2:
        return raw[np.arange(len(X)), [list(classes).index(t) for t in targets]]
    return turned(raw, classes, targets)


def test_a_pca_step_is_not_explained_under_the_input_names_of_its_components(tmp_path,
                                                                              monkeypatch):
    """The issue's case: PCA keeping all 30 breast-cancer measurements, then a logistic
    regression. Each measurement's part is its own, against the typical case."""
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.map({0: "malignant", 1: "benign"})
    est = make_pipeline(PCA(n_components=30), LogisticRegression(max_iter=5000)).fit(X, y)
    model = _served_frame(tmp_path, est, X.assign(diagnosis=y), "diagnosis")
    rows = X.iloc[:40]
    monkeypatch.setenv("MODEL_DIR", str(model))
    body = call(event("POST", "/api/predict", body={"instances": fitted.rows(rows)}))[2]
    manifest = call(event("GET", "/api/model"))[2]
    typical = pd.DataFrame([{f["name"]: f["default"] for f in manifest["features"]}])[X.columns]
    names = list(X.columns)
    targets = [r["explanation"]["target"] for r in body["results"]]
    full = _scores_of(est, rows, targets, est.classes_)
    expected = np.array([full - _scores_of(est, rows.assign(**{n: typical[n].iloc[0]}), targets,
                                           est.classes_) for n in names]).T
    got = np.array([contributions(r, names) for r in body["results"]])
    np.testing.assert_allclose(got, expected, atol=1e-8)


def _served_frame(folder, est, frame: pd.DataFrame, target: str):
    """Package a model fitted on the whole frame, with every fifth row as its reference."""
    features = [c for c in frame.columns if c != target]
    fit = fitted._save(folder, est, frame.iloc[::5], target, how="pickle", features=features)
    out = folder / "served"
    package_model.package(fit.model_file, fit.data_file, out, target=target, name=folder.name)
    return out


def test_histogram_boosting_starts_the_typical_malignant_case_where_shap_does(tmp_path,
                                                                             monkeypatch):
    """The issue's case: the page said it starts at 3.072 (leaning malignant); the right start
    leans benign, as the training data do."""
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.map({0: "malignant", 1: "benign"})
    est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    monkeypatch.setenv("MODEL_DIR", str(_served_frame(tmp_path, est, X.assign(diagnosis=y),
                                                      "diagnosis")))
    malignant = X[y == "malignant"].median().to_frame().T
    body = call(event("POST", "/api/predict", body={"instances": fitted.rows(malignant)}))[2]
    result = body["results"][0]
    assert result["label"] == "malignant"
    expected, base = shap_reference(est, malignant, ["malignant"])
    assert result["explanation"]["base_value"] == pytest.approx(base[0], abs=1e-9)
    assert result["explanation"]["base_value"] < 0  # towards malignant: the data lean benign
    np.testing.assert_allclose(contributions(result, list(X.columns)), expected[0], atol=1e-9)


@pytest.mark.parametrize("name", ["onehot-ridge", "onehot-forest"])
def test_a_category_is_named_with_its_value(served, monkeypatch, name):
    """A regression's explanation names the category the row has ("city = Oslo")."""
    model = served(name)
    body = model.answer(monkeypatch)
    for row, result in zip(fitted.rows(model.frame), body["results"]):
        named = {c["feature"]: c.get("value") for c in result["explanation"]["contributions"]}
        if "city" in named:
            assert named["city"] == row["city"]
        assert named.get("rooms") is None and named.get("area") is None


@pytest.mark.parametrize("name", UNEXPLAINED)
def test_a_model_that_cannot_be_traced_to_its_inputs_is_explained_with_null(served,
                                                                           monkeypatch, name):
    model = served(name)
    body = model.answer(monkeypatch)
    assert [r["explanation"] for r in body["results"]] == [None] * len(model.frame)
    assert body["predictions"] == list(model.estimator.predict(model.frame))


@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0),
    lambda: HistGradientBoostingClassifier(max_iter=12, random_state=0)])
def test_a_missing_value_takes_the_trees_own_way_as_in_shap(make):
    """Rows with NaN (which these estimators take) are explained along the side each split
    sends a missing value, as shap's walk does. Called directly: the API takes NaN only for
    the features a manifest declares optional."""
    from predict.explain import explain_rows
    t = table()
    X = t[NUMERIC].astype(float).to_numpy()
    X[np.random.default_rng(1).random(X.shape) < 0.2] = np.nan
    est = make().fit(X, t["dear"])
    predicted = list(est.predict(X))
    got = explain_rows(est, X, NUMERIC, predicted)
    expected, base = shap_reference(est, X, predicted)
    np.testing.assert_allclose(
        [contributions({"explanation": e}, NUMERIC) for e in got], expected, atol=1e-9)
    np.testing.assert_allclose([e["base_value"] for e in got], base, atol=1e-9)


def walked_histogram_reference(est, X: pd.DataFrame, train: pd.DataFrame, predicted: list):
    """Saabas by hand for histogram boosting (which shap walks by thresholds only, ignoring
    category splits): each tree walked row by row in its predictor's column order, a category
    going left when its bit is set (an unseen or missing one where missing values go); each
    node valued by the mean of the tree's own predictions over the training rows that reach
    it. Returns the contributions and the per-tree leaf values reached, to be compared with
    scikit-learn's own per-tree predictions."""
    order = [j for _, _, mask in est._preprocessor.transformers_ for j in np.flatnonzero(mask)]
    known, f_map = est._bin_mapper.make_known_categories_bitsets()

    def walk(predictor, z):
        nodes, path = predictor.nodes, [0]
        while not nodes["is_leaf"][path[-1]]:
            n = nodes[path[-1]]
            x = z[n["feature_idx"]]
            bit = lambda sets, i: bool(sets[i][int(x) // 32] >> (int(x) % 32) & 1)  # noqa: E731
            if np.isnan(x):
                left = n["missing_go_to_left"]
            elif n["is_categorical"]:
                in_left = bit(predictor.raw_left_cat_bitsets, n["bitset_idx"])
                seen = bit(known, f_map[n["feature_idx"]])
                left = in_left if seen or in_left else n["missing_go_to_left"]
            else:
                left = x <= n["num_threshold"]
            path.append(n["left"] if left else n["right"])
        return path

    Z, T = est._preprocessor.transform(X), est._preprocessor.transform(train)
    parts, reached = np.zeros(X.shape), []
    for stage in est._predictors:
        predictor = stage[0]
        train_paths = [walk(predictor, z) for z in T]
        leaf_of = [predictor.nodes["value"][p[-1]] for p in train_paths]
        value = {n: np.mean([v for p, v in zip(train_paths, leaf_of) if n in p])
                 for p in train_paths for n in p}
        for i, z in enumerate(Z):
            path = walk(predictor, z)
            for up, down in zip(path[:-1], path[1:]):
                parts[i, order[predictor.nodes["feature_idx"][up]]] += value[down] - value[up]
        reached.append([predictor.nodes["value"][walk(predictor, z)[-1]] for z in Z])
    sign = turned(np.ones(len(X)), est.classes_, predicted)
    return parts * sign[:, None], np.array(reached), Z


def test_histogram_boosting_with_a_categorical_feature_against_a_walk_by_hand():
    """Called directly: packaging refuses this model today (its encoder pickles a
    functools.partial). Rows with a city never seen and with missing values included."""
    from predict.explain import explain_rows
    t = table()
    est = HistGradientBoostingClassifier(categorical_features=["city"], max_iter=8,
                                         max_leaf_nodes=6, random_state=0)
    est.fit(t[FRAME], t["dear"])
    rows = t[FRAME].copy()
    rows.loc[:9, "city"] = "Bergen"
    rows.loc[10:19, "area"] = np.nan
    predicted = list(est.predict(rows))
    got = explain_rows(est, rows, FRAME, predicted)
    expected, reached, Z = walked_histogram_reference(est, rows, t[FRAME], predicted)
    known = est._bin_mapper.make_known_categories_bitsets()
    own = np.array([stage[0].predict(Z, *known, 1) for stage in est._predictors])
    np.testing.assert_array_equal(reached, own)  # the walk by hand is the predictor's own
    np.testing.assert_allclose([contributions({"explanation": e}, FRAME) for e in got],
                               expected, atol=1e-9)
    mean_raw = est.decision_function(t[FRAME]).mean()  # over the training rows
    np.testing.assert_allclose([e["base_value"] for e in got],
                               turned(np.full(len(rows), mean_raw), est.classes_, predicted),
                               atol=1e-9)
    assert {c["value"] for e in got[:10] for c in e["contributions"] if c["feature"] == "city"} \
        <= {"Bergen"}
