"""Feature kinds beyond numbers and categories, packaged with the README's command and served:
missing values where the model takes them (the estimator's own answer on NaN rows), free text
(the estimator's own answer on sentences it never saw), the OpenAPI document saying so, and
packaging's warning for a string column that looks like free text."""
import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import fitted
import package_model
from predict.scoring import results_csv
from support import call, event

WORDS = {"dear": ["spacious", "view", "garden", "renovated", "balcony", "bright"],
         "cheap": ["small", "noisy", "dark", "old", "damp", "cramped"]}


def table() -> pd.DataFrame:
    """houses() with a missing area in every sixth row and a free-text description."""
    houses = fitted.houses()
    rng = np.random.default_rng(5)
    houses["oslo"] = (houses["city"] == "Oslo").astype(int)
    houses["review"] = [" ".join(rng.choice(WORDS[d], 4)) + f", flat {i}"
                        for i, d in enumerate(houses["dear"])]
    houses["gappy_area"] = houses["area"].where(np.arange(len(houses)) % 6 != 0)
    return houses


def _hist_nan(t):
    X = t[["rooms", "gappy_area", "oslo"]]
    return HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, t["dear"]), X


def _imputer(t):
    X = t[["rooms", "area", "oslo"]]
    return make_pipeline(SimpleImputer(), LogisticRegression()).fit(X.to_numpy(), t["dear"]), X


def _imputer_in_columns(t):
    X = t[["rooms", "area", "city"]]
    pre = ColumnTransformer([("area", make_pipeline(SimpleImputer(), StandardScaler()), ["area"]),
                             ("rooms", StandardScaler(), ["rooms"]),
                             ("city", OneHotEncoder(handle_unknown="ignore"), ["city"])])
    return make_pipeline(pre, LogisticRegression()).fit(X, t["dear"]), X


def _no_missing(t):
    X = t[["rooms", "area", "oslo"]]
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, t["dear"]), X


def _tree(t):
    X = t[["rooms", "area", "oslo"]]
    return DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, t["dear"]), X


def _text_column(t):
    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(t["review"], t["dear"]), \
        t[["review"]]


def _text_frame(t):
    X = t[["review", "rooms"]]
    pre = ColumnTransformer([("words", TfidfVectorizer(), "review"),
                             ("rooms", StandardScaler(), ["rooms"])])
    return make_pipeline(pre, LogisticRegression()).fit(X, t["dear"]), X


BUILDERS = {"hist-nan": _hist_nan, "imputer": _imputer, "imputer-in-columns": _imputer_in_columns,
            "no-missing": _no_missing, "tree": _tree, "text-column": _text_column, "text-frame": _text_frame}


@pytest.fixture(scope="session")
def kinds(tmp_path_factory):
    """Each model fitted once, saved, packaged from its reference CSV: {kind: (estimator, X,
    model directory, manifest)}."""
    t = table()
    out = {}
    for kind, build in BUILDERS.items():
        folder = tmp_path_factory.mktemp(kind)
        estimator, X = build(t)
        saved = fitted._save(folder, estimator, t.assign(**{c: X[c] for c in X.columns}), "dear",
                             how="pickle", features=list(X.columns))
        served = folder / "served"
        manifest = package_model.package(saved.model_file, saved.data_file, served,
                                         target="dear", name=kind)
        out[kind] = (estimator, X, served, manifest)
    return out


def serve(kinds, kind, monkeypatch):
    estimator, X, served, manifest = kinds[kind]
    monkeypatch.setenv("MODEL_DIR", str(served))
    return estimator, X, manifest


def own_answer(estimator, X: pd.DataFrame, kind: str) -> list:
    """The estimator's predictions on X as it was fitted on it (array, DataFrame or strings)."""
    if kind == "imputer":
        return list(estimator.predict(X.to_numpy(dtype=float)))
    return list(estimator.predict(list(X.iloc[:, 0]) if kind == "text-column" else X))


@pytest.mark.parametrize("kind, expected", [
    ("hist-nan", {"rooms": ("integer", True), "gappy_area": ("number", True),
                  "oslo": ("integer", True)}),
    ("imputer", {"rooms": ("integer", True), "area": ("number", True), "oslo": ("integer", True)}),
    ("imputer-in-columns", {"rooms": ("integer", False), "area": ("number", True),
                            "city": ("categorical", False)}),
    ("no-missing", {"rooms": ("integer", False), "area": ("number", False),
                    "oslo": ("integer", False)}),
    ("tree", {"rooms": ("integer", True), "area": ("number", True), "oslo": ("integer", True)}),
    ("text-column", {"review": ("text", False)}),
    ("text-frame", {"review": ("text", False), "rooms": ("integer", False)}),
])
def test_the_manifest_gives_each_feature_its_kind(kinds, kind, expected):
    features = kinds[kind][3]["features"]
    assert {f["name"]: (f["type"], f.get("optional", False)) for f in features} == expected
    assert all(f["max_length"] >= 10_000 for f in features if f["type"] == "text")


def with_gaps(X: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The first six reference rows, with each of names missing in one row or another."""
    rows = X.head(6).astype({n: float for n in names if X[n].dtype.kind in "iu"})
    for i, name in enumerate(names):
        rows.iloc[i % 6, rows.columns.get_loc(name)] = np.nan
        rows.iloc[(i + 3) % 6, rows.columns.get_loc(name)] = np.nan
    return rows


def bodies_with_gaps(rows: pd.DataFrame) -> dict:
    """The same rows with missing values, as each format sends them."""
    records = [{k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
                for k, v in r.items()} for r in rows.to_dict(orient="records")]
    out = io.StringIO()
    rows.to_csv(out, index=False)  # pandas writes NaN as an empty cell
    return {
        "null": {"instances": records},
        "left out": {"instances": [{k: v for k, v in r.items() if v is not None}
                                   for r in records]},
        "lists with null": {"inputs": [list(r.values()) for r in records]},
        "csv": out.getvalue(),
    }


@pytest.mark.parametrize("kind", ["hist-nan", "imputer", "imputer-in-columns", "tree"])
def test_missing_values_get_the_estimators_own_answers(kinds, kind, monkeypatch):
    estimator, X, manifest = serve(kinds, kind, monkeypatch)
    optional = [f["name"] for f in manifest["features"] if f.get("optional")]
    rows = with_gaps(X, optional)
    expected = own_answer(estimator, rows, kind)
    for shape, body in bodies_with_gaps(rows).items():
        csv_text = isinstance(body, str)
        status, _, answer = call(event("POST", "/api/predict", body=body, headers={
            "content-type": "text/csv"} if csv_text else None))
        assert (shape, status) == (shape, 200), answer
        assert (shape, answer["predictions"]) == (shape, expected)
        assert all(w["field"] not in optional or "range" in w["message"]
                   for r in answer["results"] for w in r["warnings"])


def test_a_row_missing_a_value_gets_no_explanation_rather_than_another_path(kinds, monkeypatch):
    estimator, X, _ = serve(kinds, "tree", monkeypatch)
    rows = fitted.rows(X.head(2))
    rows[0]["area"] = None
    status, _, answer = call(event("POST", "/api/predict", body={"instances": rows}))
    assert status == 200, answer
    assert [r["explanation"] is None for r in answer["results"]] == [True, False]
    assert answer["results"][1]["explanation"]["method"] == "decision_path"


@pytest.mark.parametrize("kind, field", [("no-missing", "area"), ("imputer-in-columns", "rooms")])
def test_a_feature_the_model_cannot_miss_still_refuses_null(kinds, kind, field, monkeypatch):
    _, X, _ = serve(kinds, kind, monkeypatch)
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in X.iloc[0].items()}
    status, _, body = call(event("POST", "/api/predict", body={"features": {**row, field: None}}))
    assert (status, body["error"]["code"]) == (400, "missing_feature")
    assert body["error"]["details"][0]["field"] == field


SENTENCES = ["a bright view, and a garden nobody has seen", "small, \"damp\" and dark",
             "never heard of these words", "", "spacious; renovated\nwith a balcony"]


@pytest.mark.parametrize("kind", ["text-column", "text-frame"])
def test_free_text_gets_the_estimators_own_answers(kinds, kind, monkeypatch):
    estimator, X, _ = serve(kinds, kind, monkeypatch)
    rows = pd.DataFrame({"review": SENTENCES, **({"rooms": [3, 1, 2, 4, 5]}
                                                  if "rooms" in X else {})})[list(X.columns)]
    expected = own_answer(estimator, rows, kind)
    records = fitted.rows(rows)
    out = io.StringIO()
    rows.to_csv(out, index=False)
    bodies = {"objects": {"instances": records},
              "lists": {"instances": [list(r.values()) for r in records]},
              "split": {"dataframe_split": rows.to_dict(orient="split")},
              "csv": out.getvalue()}
    if kind == "text-column":
        bodies["one value a row"] = {"inputs": SENTENCES}
    for shape, body in bodies.items():
        status, _, answer = call(event("POST", "/api/predict", body=body, headers={
            "content-type": "text/csv"} if isinstance(body, str) else None))
        assert (shape, status) == (shape, 200), answer
        assert (shape, answer["predictions"]) == (shape, expected)


def test_text_longer_than_its_limit_or_not_text_is_refused(kinds, monkeypatch):
    _, _, manifest = serve(kinds, "text-column", monkeypatch)
    limit = manifest["features"][0]["max_length"]
    for value, code, message in [
            ("x" * (limit + 1), "too_long",
             f"expected text of at most {limit} characters, received {limit + 1}"),
            (12, "invalid_type", "expected text, received number")]:
        status, _, body = call(event("POST", "/api/predict",
                                     body={"features": {"review": value}}))
        assert (status, body["error"]["code"]) == (400, code)
        assert body["error"]["message"] == f"field 'review': {message}"


def row_validator(doc: dict) -> Draft202012Validator:
    return Draft202012Validator({**doc, "$ref": "#/components/schemas/Row"})


def test_the_openapi_document_allows_null_where_optional_and_any_text(kinds, monkeypatch):
    _, X, manifest = serve(kinds, "imputer-in-columns", monkeypatch)
    doc = call(event("GET", "/api/openapi.json"))[2]
    validator = row_validator(doc)
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in X.iloc[0].items()}
    assert validator.is_valid({**row, "area": None})
    assert validator.is_valid({k: v for k, v in row.items() if k != "area"})
    assert not validator.is_valid({**row, "rooms": None})
    assert not validator.is_valid({k: v for k, v in row.items() if k != "rooms"})

    serve(kinds, "text-column", monkeypatch)
    doc = call(event("GET", "/api/openapi.json"))[2]
    validator = row_validator(doc)
    assert validator.is_valid({"review": "any sentence at all"})
    assert not validator.is_valid({"review": "x" * 10_001})
    assert not validator.is_valid({"review": None})


def test_packaging_warns_of_a_string_column_that_looks_like_free_text(tmp_path, capsys):
    t = table().rename(columns={"review": "note"})
    X = t[["note", "rooms"]]
    pre = ColumnTransformer([("note", OneHotEncoder(handle_unknown="ignore"), ["note"]),
                             ("rooms", StandardScaler(), ["rooms"])])
    est = make_pipeline(pre, LogisticRegression()).fit(X, t["dear"])
    saved = fitted._save(tmp_path, est, t, "dear", how="pickle", features=["note", "rooms"])
    args = [str(saved.model_file), str(saved.data_file), "--target", "dear"]
    outcomes = {}
    for flags in ([], ["--categorical", "note"], ["--text", "note"]):
        out = tmp_path / f"out{len(outcomes)}"
        assert package_model.main([*args, "--out", str(out), *flags]) == 0
        features = json.loads((out / "manifest.json").read_text())["features"]
        outcomes[" ".join(flags)] = (capsys.readouterr().err, features[0]["type"])
    warning, kind = outcomes[""]
    assert kind == "categorical"
    assert ("warning: column 'note' has 80 distinct values in 80 rows" in warning
            and "--text 'note'" in warning and "--categorical 'note'" in warning)
    assert outcomes["--categorical note"] == ("", "categorical")
    assert outcomes["--text note"] == ("", "text")


def test_packaging_refuses_text_for_a_column_the_model_takes_only_seen_values_of(tmp_path,
                                                                               capsys):
    t = table()
    X = t[["city", "rooms"]]
    pre = ColumnTransformer([("city", OneHotEncoder(), ["city"]),  # handle_unknown="error"
                             ("rooms", StandardScaler(), ["rooms"])])
    est = make_pipeline(pre, LogisticRegression()).fit(X, t["dear"])
    saved = fitted._save(tmp_path, est, t, "dear", how="pickle", features=["city", "rooms"])
    code = package_model.main([str(saved.model_file), str(saved.data_file), "--target", "dear",
                               "--out", str(tmp_path / "out"), "--text", "city"])
    assert code == 2
    assert ("--text city: the model cannot predict with a value of that column it has not seen"
            in capsys.readouterr().err)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_the_results_csv_neutralises_formula_cells():
    """OWASP's CSV injection rule: text starting with = + - @ TAB or CR gets a quote first;
    numbers, negative ones included, stay numbers."""
    results = [{"label": "=HYPERLINK(\"http://x\")", "probabilities": {"=cmd": 0.25, "ok": 0.75},
                "warnings": [{"field": "@sum"}]},
               {"label": "ok", "probabilities": {"=cmd": -0.0, "ok": 1.0}, "warnings": []}]
    table = list(csv.reader(io.StringIO(results_csv(results, ["=cmd", "ok"]))))
    assert table == [["row", "prediction", "model_score_=cmd", "model_score_ok",
                     "outside_training_range"],
                     ["0", "'=HYPERLINK(\"http://x\")", "0.25", "0.75", "'@sum"],
                     ["1", "ok", "-0.0", "1.0", ""]]
