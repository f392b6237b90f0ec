"""Training is reproducible: a re-run writes the same manifest and the same pickle."""
import train
from support import MODEL_DIR


def test_retraining_writes_the_committed_manifest_and_pickle(tmp_path):
    manifest = train.train(tmp_path)
    assert (tmp_path / "manifest.json").read_text() == (MODEL_DIR / "manifest.json").read_text()
    assert (tmp_path / "dect_model.pkl").read_bytes() == (MODEL_DIR / "dect_model.pkl").read_bytes()
    assert (tmp_path / "sample.csv").read_text() == (MODEL_DIR / "sample.csv").read_text()
    assert manifest["metrics"]["accuracy"] > 0.9


def test_feature_descriptions_cover_all_thirty_measurements():
    names = [f"{s} {m}" for s in ("mean", "worst") for m in train.MEASUREMENTS]
    names += [f"{m} error" for m in train.MEASUREMENTS]
    labels = {train.feature_meta(n)["label"] for n in names}
    assert len(labels) == 30
