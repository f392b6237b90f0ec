"""The `predict` serverless function: a scikit-learn model behind a Netlify/Lambda handler.

On AWS Lambda the handler is `predict.handler`; a WSGI server runs `predict.wsgi:app`;
locally scripts/serve.py serves the same WSGI app. Importing it is cheap: scikit-learn and
the pickle load on the first request that needs them.
"""
from . import snapstart  # noqa: F401  (registers the SnapStart hook, where Lambda runs it)
from .app import handler

__all__ = ["handler"]
