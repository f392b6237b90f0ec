"""The `predict` serverless function: a scikit-learn model behind a Netlify/Lambda handler.

On AWS Lambda the handler is `predict.handler`; locally scripts/serve.py imports this package.
Importing it is cheap: scikit-learn and the pickle load on the first request that needs them.
"""
from .app import handler

__all__ = ["handler"]
