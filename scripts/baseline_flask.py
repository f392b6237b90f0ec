"""The benchmark's baseline: a plain Flask app serving the same pickle, as tutorials write it.

No validation beyond what NumPy does, no explanation, no verification: the least a Python
web app does to answer the same request. Used by scripts/bench.py only.
"""
import json
import pickle
from pathlib import Path

import numpy as np
from flask import Flask, jsonify, request

MODEL_DIR = Path(__file__).resolve().parents[1] / "model"
MANIFEST = json.loads((MODEL_DIR / "manifest.json").read_text())
NAMES = [f["name"] for f in MANIFEST["features"]]
with open(MODEL_DIR / MANIFEST["artifact"]["file"], "rb") as f:
    MODEL = pickle.load(f)

app = Flask(__name__)


@app.post("/api/predict")
def predict():
    doc = request.get_json()
    rows = doc["instances"] if "instances" in doc else [doc["features"]]
    X = np.array(rows if rows and isinstance(rows[0], list) else  # rows as lists, as they are
                 [[row[n] for n in NAMES] for row in rows], dtype=float)
    proba = MODEL.predict_proba(X)
    labels = MODEL.classes_.take(np.argmax(proba, axis=1))
    classes = [str(c) for c in MODEL.classes_]
    return jsonify({"predictions": labels.tolist(),
                    "results": [{"label": label, "probabilities": dict(zip(classes, p))}
                                for label, p in zip(labels.tolist(), proba.tolist())]})
