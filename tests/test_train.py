"""Training is reproducible: a re-run writes the same manifest and the same pickle.

What must be reproducible is the model (its pickle, predictions and metrics) and its card,
not the interpreter that ran the training: the manifest records Python's version, which
differs between the 3.11, 3.12 and 3.13 the suite runs on, so that one field is left out.
"""
import json

import train
from support import MODEL_DIR


def without_python_version(text: str) -> dict:
    manifest = json.loads(text)
    manifest["versions"].pop("python")
    return manifest


def test_retraining_writes_the_committed_manifest_and_pickle(tmp_path):
    manifest = train.train(tmp_path)
    assert without_python_version((tmp_path / "manifest.json").read_text()) == \
        without_python_version((MODEL_DIR / "manifest.json").read_text())
    assert (tmp_path / "dect_model.pkl").read_bytes() == (MODEL_DIR / "dect_model.pkl").read_bytes()
    assert (tmp_path / "sample.csv").read_text() == (MODEL_DIR / "sample.csv").read_text()
    assert manifest["metrics"]["accuracy"] > 0.9


def test_feature_descriptions_cover_all_thirty_measurements():
    from sklearn.datasets import load_breast_cancer
    names = [str(n) for n in load_breast_cancer().feature_names]  # the data set's own names
    labels = {train.feature_meta(n)["label"] for n in names}
    assert len(names) == len(labels) == 30
