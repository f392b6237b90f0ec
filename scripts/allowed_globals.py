"""Write netlify/functions/predict/allowed.py: the scikit-learn classes a pickle may name.

The function checks a pickle's globals against this list by name, before it imports anything
(as skops' audit does), so the list is computed here, ahead of time, from the installed
scikit-learn (requirements.txt pins it): every estimator class (a subclass of BaseEstimator)
in a scikit-learn module that is not a test or a build helper, and the fitted parts
estimators keep (trees, losses and their links, optimizers). Re-run it when the pin moves;
tests/test_trust.py fails while the committed list is stale.

    python scripts/allowed_globals.py            # rewrite the file
    python scripts/allowed_globals.py --check    # exit 1 if it is stale
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "netlify" / "functions" / "predict" / "allowed.py"
SKIPPED = {"tests", "externals", "_build_utils", "conftest", "_testing", "_mocking",
           "experimental", "__check_build", "_min_dependencies", "_distributor_init"}
# Fitted parts that are not estimators, by module: every class defined there (Python classes;
# the Cython losses of sklearn._loss._loss and _sgd_fast are listed by unpickle.py).
PART_MODULES = ("sklearn._loss.loss", "sklearn._loss.link",
                "sklearn.neural_network._stochastic_optimizers")
PARTS = ("sklearn.tree._tree.Tree",
         "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
         "sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
         "sklearn.utils._bunch.Bunch",
         "sklearn.calibration._CalibratedClassifier",
         "sklearn.compose._column_transformer.make_column_selector")


def estimator_classes() -> list[str]:
    """Return "module.Name" of every BaseEstimator subclass scikit-learn defines, and its parts."""
    import sklearn
    from sklearn.base import BaseEstimator

    found = set(PARTS)
    for info in pkgutil.walk_packages(sklearn.__path__, "sklearn."):
        if SKIPPED.intersection(info.name.split(".")):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                module = importlib.import_module(info.name)
            except ImportError:
                continue
        for name, obj in vars(module).items():
            if not inspect.isclass(obj) or obj.__module__ != info.name:
                continue
            if issubclass(obj, BaseEstimator) or info.name in PART_MODULES:
                found.add(f"{obj.__module__}.{obj.__qualname__}")
    return sorted(found)


def render() -> str:
    import sklearn
    names = "".join(f'    "{n}",\n' for n in estimator_classes())
    return (f'"""The scikit-learn {sklearn.__version__} classes a pickle may name: written by '
            "scripts/allowed_globals.py, do not edit.\"\"\"\n\n"
            f'SKLEARN_VERSION = "{sklearn.__version__}"\n'
            f"SKLEARN_CLASSES = frozenset({{\n{names}}})\n")


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(f"wrote {OUT}")
