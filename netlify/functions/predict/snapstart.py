"""Lambda SnapStart's runtime hooks (only when the template's SnapStart parameter is on).

Owns: loading the model before Lambda takes the snapshot of a published version, so every
environment restored from it starts warm. Nothing else needs to run after a restore: the
model answers the same in every copy (no random state, no connection, no credential is made
at load). `snapshot_restore_py` ships with Lambda's Python runtimes (and awslambdaric); Lambda
calls the hooks only with SnapStart on. Elsewhere nothing is registered, and the model still
loads on the first request that needs it.
"""
from __future__ import annotations

try:
    from snapshot_restore_py import register_before_snapshot
except ImportError:  # not on Lambda: no snapshot is ever taken
    register_before_snapshot = None


def _load_before_snapshot() -> None:
    from .app import warm
    warm()


if register_before_snapshot is not None:
    register_before_snapshot(_load_before_snapshot)
