"""Real, small, seeded models fitted the way people fit them, saved the way they save them.

Each builder fits on a pandas DataFrame (or an array), writes the model file and a reference
CSV into a folder, and returns a Fitted: what packaging and the tests need to check parity.
"""
from __future__ import annotations

import csv
import pickle
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROWS = 80


@dataclass
class Fitted:
    estimator: object
    frame: pd.DataFrame  # the reference rows as the estimator was fitted on them (no target)
    target: str
    model_file: Path
    data_file: Path


def houses(seed: int = 3) -> pd.DataFrame:
    """Return a small seeded table: integer, float and string features, and two targets."""
    rng = np.random.default_rng(seed)
    rooms = rng.integers(1, 7, ROWS)
    area = rng.uniform(20, 200, ROWS).round(1)
    city = rng.choice(["Lyon", "Oslo", "Porto"], ROWS)
    price = 1000 * rooms + 30 * area + np.where(city == "Oslo", 2500, 0) + rng.normal(0, 300, ROWS)
    dear = np.where(price > np.median(price), "dear", "cheap")
    return pd.DataFrame({"rooms": rooms, "area": area, "city": city,
                         "price": price.round(2), "dear": dear})


def _by_name():
    return ColumnTransformer([("scale", StandardScaler(), ["rooms", "area"]),
                              ("onehot", OneHotEncoder(handle_unknown="ignore"), ["city"])])


def _save(folder: Path, estimator, table: pd.DataFrame, target: str, *, how: str,
          features: list[str] | None = None) -> Fitted:
    """Write the model (pickle, joblib or joblib compressed) and its reference CSV."""
    model_file = folder / ("model.pkl" if how == "pickle" else "model.joblib")
    if how == "pickle":
        with open(model_file, "wb") as f:
            pickle.dump(estimator, f)
    else:
        joblib.dump(estimator, model_file, compress=3 if how == "joblib-compressed" else 0)
    features = features or [c for c in table.columns if c not in ("price", "dear")]
    data_file = folder / "reference.csv"
    with open(data_file, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*features, target])
        writer.writerows(table[[*features, target]].itertuples(index=False))
    return Fitted(estimator, table[features], target, model_file, data_file)


def frame_classifier(folder: Path) -> Fitted:
    """A ColumnTransformer by name (scaler + one-hot of a string column) and a logistic regression."""
    table = houses()
    X = table[["rooms", "area", "city"]]
    est = make_pipeline(_by_name(), LogisticRegression()).fit(X, table["dear"])
    return _save(folder, est, table, "dear", how="pickle")


def frame_regressor(folder: Path) -> Fitted:
    """The same by-name pipeline with set_output(transform="pandas") and a ridge, joblib-saved."""
    table = houses()
    X = table[["rooms", "area", "city"]]
    pre = _by_name()
    pre.set_params(onehot__sparse_output=False)
    est = make_pipeline(pre, Ridge()).set_output(transform="pandas").fit(X, table["price"])
    return _save(folder, est, table, "price", how="joblib")


def _numeric(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(oslo=(table["city"] == "Oslo").astype(int))[["rooms", "area", "oslo"]]


def _numeric_save(folder, est, table, target, *, how) -> Fitted:
    numeric = _numeric(table).assign(price=table["price"], dear=table["dear"])
    return _save(folder, est, numeric, target, how=how)


def _numeric_fit(folder: Path, est, target: str, *, how: str = "pickle",
                 array: bool = False) -> Fitted:
    """Fit est on the numeric table (its DataFrame, or its array) for target and save it."""
    table = houses()
    X = _numeric(table)
    est.fit(X.to_numpy() if array else X, table[target])
    return _numeric_save(folder, est, table, target, how=how)


def forest_compressed(folder: Path) -> Fitted:
    """A random forest fitted on a numeric DataFrame, saved with joblib.dump(compress=3)."""
    return _numeric_fit(folder, RandomForestClassifier(n_estimators=15, max_depth=5,
                                                       random_state=0),
                        "dear", how="joblib-compressed")


def boosting(folder: Path) -> Fitted:
    """Gradient boosting fitted on a numeric DataFrame, pickled."""
    return _numeric_fit(folder, GradientBoostingClassifier(n_estimators=25, max_depth=3,
                                                           random_state=0), "dear")


def forest_regressor(folder: Path) -> Fitted:
    """A random forest regressor on a numeric array, pickled."""
    return _numeric_fit(folder, RandomForestRegressor(n_estimators=10, max_depth=4,
                                                      random_state=0), "price", array=True)


def extra_trees(folder: Path) -> Fitted:
    """Extra trees regressor on a numeric DataFrame, pickled."""
    return _numeric_fit(folder, ExtraTreesRegressor(n_estimators=10, max_depth=4,
                                                    random_state=0), "price")


def boosting_regressor(folder: Path) -> Fitted:
    """Gradient boosting regressor on a numeric DataFrame, pickled."""
    return _numeric_fit(folder, GradientBoostingRegressor(n_estimators=25, max_depth=2,
                                                          random_state=0), "price")


def _city_fit(folder: Path, est) -> Fitted:
    """Fit est to tell the three cities apart from rooms, area and price; pickle it."""
    table = houses()
    features = ["rooms", "area", "price"]
    est.fit(table[features], table["city"])
    return _save(folder, est, table, "city", how="pickle", features=features)


def boosting_multiclass(folder: Path) -> Fitted:
    """Gradient boosting over three classes (one tree per class per stage), pickled."""
    return _city_fit(folder, GradientBoostingClassifier(n_estimators=10, max_depth=2,
                                                        random_state=0))


def hist_boosting(folder: Path) -> Fitted:
    """Histogram gradient boosting, binary, on a numeric DataFrame, pickled."""
    return _numeric_fit(folder, HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=8,
                                                               random_state=0), "dear")


def hist_boosting_regressor(folder: Path) -> Fitted:
    """Histogram gradient boosting regressor on a numeric DataFrame, pickled."""
    return _numeric_fit(folder, HistGradientBoostingRegressor(max_iter=15, max_leaf_nodes=8,
                                                              random_state=0), "price")


def hist_boosting_multiclass(folder: Path) -> Fitted:
    """Histogram gradient boosting over three classes, pickled."""
    return _city_fit(folder, HistGradientBoostingClassifier(max_iter=10, max_leaf_nodes=6,
                                                            random_state=0))


KINDS = {"frame-classifier": frame_classifier, "frame-regressor": frame_regressor,
         "forest-joblib-compressed": forest_compressed, "boosting": boosting}
ENSEMBLES = {"forest-joblib-compressed": forest_compressed, "boosting": boosting,
             "forest-regressor": forest_regressor, "extra-trees": extra_trees,
             "boosting-regressor": boosting_regressor, "boosting-multiclass": boosting_multiclass,
             "hist-boosting": hist_boosting, "hist-boosting-regressor": hist_boosting_regressor,
             "hist-boosting-multiclass": hist_boosting_multiclass}


def rows(frame: pd.DataFrame) -> list[dict]:
    """Return the reference rows as JSON objects, each value typed as in the DataFrame."""
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in frame.to_dict(orient="records")]
