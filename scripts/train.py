"""Train dect_model and write model/dect_model.pkl and model/manifest.json.

A decision tree on scikit-learn's copy of the Wisconsin diagnostic breast cancer data:
a stratified held-out split, hyperparameters chosen by cross-validation on the training
part only, a fixed seed, so a re-run with the pinned versions writes the same files.

    python scripts/train.py [--out model]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.tree import DecisionTreeClassifier

import modelcard

SEED = 42
TEST_SIZE = 0.25
POSITIVE = "malignant"
GRID = {"max_depth": [2, 3, 4, 5, 6, None], "min_samples_leaf": [1, 3, 5, 10],
        "class_weight": [None, "balanced"]}
SCORING = "balanced_accuracy"
SAMPLE_ROWS = 20
ROOT = Path(__file__).resolve().parents[1]

# What each of the ten measurements of a cell nucleus means (Street, Wolberg & Mangasarian
# 1993); the images were digitised, so sizes are in image units, not micrometres.
MEASUREMENTS = {
    "radius": ("Radius", "mean distance from the centre to points on the nucleus outline",
               "image units"),
    "texture": ("Texture", "standard deviation of the grey-scale values inside the nucleus",
                "grey levels"),
    "perimeter": ("Perimeter", "length of the nucleus outline", "image units"),
    "area": ("Area", "area of the nucleus", "square image units"),
    "smoothness": ("Smoothness", "local variation in radius lengths", "ratio"),
    "compactness": ("Compactness", "perimeter² / area − 1", "ratio"),
    "concavity": ("Concavity", "severity of the concave parts of the outline", "ratio"),
    "concave points": ("Concave points", "number of concave parts of the outline", "ratio"),
    "symmetry": ("Symmetry", "symmetry of the nucleus", "ratio"),
    "fractal dimension": ("Fractal dimension", "'coastline approximation' − 1 of the outline",
                          "ratio"),
}
STATISTICS = {
    "mean": ("{} (mean)", "average over the nuclei in the image"),
    "error": ("{} (variation)", "standard error over the nuclei in the image"),
    "worst": ("{} (largest)", "mean of the three largest values in the image"),
}


def feature_meta(name: str) -> dict:
    """Given a data set column like 'worst concave points', return its label, description, unit."""
    if name.startswith("mean ") or name.startswith("worst "):
        stat, measure = name.split(" ", 1)
    else:
        measure, stat = name.rsplit(" ", 1)
    label, what, unit = MEASUREMENTS[measure]
    label_fmt, how = STATISTICS[stat]
    return {"label": label_fmt.format(label), "description": f"{what}: {how}", "unit": unit}


def train(out_dir: Path) -> dict:
    """Fit dect_model, write its pickle and manifest into out_dir, return the manifest."""
    data = load_breast_cancer()
    X, names = data.data, list(data.feature_names)
    y = data.target_names[data.target]  # the labels in words: "malignant", "benign"
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y, random_state=SEED)
    search = GridSearchCV(DecisionTreeClassifier(random_state=SEED), GRID, scoring=SCORING,
                          cv=StratifiedKFold(5, shuffle=True, random_state=SEED))
    search.fit(X_train, y_train)
    model = search.best_estimator_
    types = ["number"] * len(names)
    labels = [str(c) for c in model.classes_]
    cv = search.cv_results_
    manifest = {
        "name": "dect_model",
        "version": "1.0.0",
        "title": "Breast tumour malignancy detector",
        "description": "A decision tree that says whether a breast tumour sample looks "
                       "malignant or benign, from 30 measurements of its cell nuclei taken "
                       "from a digitised image of a fine needle aspirate.",
        "intended_use": "Teaching and demonstration: how a small, inspectable model turns "
                        "measurements into a prediction, and how it is served.",
        "limitations": [
            "This is a demonstration model, not a medical device. It must not be used to "
            "diagnose, screen or treat anyone.",
            "It learned from 569 samples from one hospital (University of Wisconsin, "
            "1990s); it has not been validated on any other population or equipment.",
            "A single decision tree is coarse: it gives the same probability to every "
            "sample that falls in the same leaf.",
            "Predictions for values outside the training ranges are less reliable and are "
            "flagged with warnings.",
        ],
        "task": "classification",
        "estimator": type(model).__name__,
        "params": {k: v for k, v in model.get_params().items() if k in GRID},
        "labels": labels,
        "positive_label": POSITIVE,
        "label_descriptions": {"malignant": "the sample looks cancerous",
                               "benign": "the sample looks non-cancerous"},
        "features": modelcard.feature_schema(
            X_train, names, types, importances=list(model.feature_importances_),
            meta={n: feature_meta(n) for n in names}),
        "examples": modelcard.examples_of(model, X_test, y_test, names, types, True),
        "metrics": {"data": "held-out test split, never seen in training or model selection",
                    **modelcard.classification_metrics(model, X_test, y_test, POSITIVE)},
        "model_selection": {
            "method": "grid search, 5-fold stratified cross-validation on the training split",
            "scoring": SCORING, "grid": GRID, "chosen": search.best_params_,
            "best_score": round(float(search.best_score_), 6),
            "results": [{"params": p, "mean_score": round(float(m), 6),
                         "std_score": round(float(s), 6), "rank": int(r)}
                        for p, m, s, r in zip(cv["params"], cv["mean_test_score"],
                                              cv["std_test_score"], cv["rank_test_score"])],
        },
        "training_data": {
            "source": "Breast Cancer Wisconsin (Diagnostic), UCI; the copy shipped with "
                      "scikit-learn (sklearn.datasets.load_breast_cancer)",
            "rows": int(len(y)),
            "class_balance": {c: int((y == c).sum()) for c in labels},
            "split": {"train_rows": int(len(y_train)), "test_rows": int(len(y_test)),
                      "test_size": TEST_SIZE, "stratified": True, "seed": SEED},
        },
    }
    write_sample(out_dir / "sample.csv", names, X_test[:SAMPLE_ROWS])
    return modelcard.write_model_dir(out_dir, model, manifest, pickle_file="dect_model.pkl")


def write_sample(path: Path, names: list[str], rows) -> None:
    """Write held-out rows (features only) as the CSV the API and the site's upload accept."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[repr(float(v)) for v in row] for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "model")
    manifest = train(parser.parse_args().out)
    m = manifest["metrics"]
    print(f"dect_model: chosen {manifest['model_selection']['chosen']}")
    print(f"held-out ({m['rows']} rows): accuracy {m['accuracy']:.3f}, balanced accuracy "
          f"{m['balanced_accuracy']:.3f}, ROC AUC {m['roc_auc']:.3f}")
    for label, s in m["per_class"].items():
        print(f"  {label:>10}: precision {s['precision']:.3f} recall {s['recall']:.3f} "
              f"f1 {s['f1']:.3f} (n={s['support']})")
    print(f"confusion matrix {m['confusion_matrix']['labels']}: {m['confusion_matrix']['matrix']}")
    print(f"wrote {manifest['artifact']['file']} ({manifest['artifact']['bytes']} bytes, "
          f"sha256 {manifest['artifact']['sha256'][:12]}…) and manifest.json")


if __name__ == "__main__":
    main()
