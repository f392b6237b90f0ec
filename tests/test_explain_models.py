"""A model with no explanation says so. Explanations themselves are checked against shap and
the estimators' own scores in test_explain_reference.py."""
from sklearn.neighbors import KNeighborsClassifier

import fitted
from support import call, event
from test_fitted_models import package_kind


def test_a_model_without_an_explanation_says_so_with_null(tmp_path, monkeypatch):
    table = fitted.houses()
    X = table[["rooms", "area"]]
    est = KNeighborsClassifier(n_neighbors=5).fit(X, table["dear"])
    fit = fitted._save(tmp_path, est, table, "dear", how="pickle", features=["rooms", "area"])
    package_kind("knn", tmp_path, monkeypatch, kinds={"knn": lambda folder: fit})
    status, _, body = call(event("POST", "/api/predict", body={"instances": fitted.rows(X[:2])}))
    assert status == 200
    assert [r["explanation"] for r in body["results"]] == [None, None]
    assert body["predictions"] == list(est.predict(X[:2]))
