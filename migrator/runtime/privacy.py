"""Clusters that stay private: Ray's token authentication on, with a fresh token per run.

Every cluster the runtime starts listens on loopback only (node address 127.0.0.1 with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, see ``cluster.py`` and ``launch.py``); this keeps Ray's
token authentication on as well (``RAY_AUTH_MODE=token``), with a random token of its own in
``RAY_AUTH_TOKEN`` that only this run's processes (the driver, the cluster, the workers, a Jobs
client) inherit, so that a port Ray opens beyond loopback in some version is still closed to
others. Setting the mode explicitly is also what quiets Ray's "token authentication is enabled"
notice: authentication is never turned off to quiet a message. A user who set
``RAY_AUTH_MODE`` or a token keeps them.

Standard library only: imported before ray.
"""

from __future__ import annotations

import os
import secrets
from typing import MutableMapping

AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def private_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Turn token authentication on in ``env`` (and give it a token), unless the user chose."""
    if "RAY_AUTH_MODE" not in env:
        env["RAY_AUTH_MODE"] = "token"
    if env["RAY_AUTH_MODE"].lower() == "token" and not env.get("RAY_AUTH_TOKEN") and not env.get("RAY_AUTH_TOKEN_PATH"):
        # Ray's own format (authentication_token_generator): 32 random bytes in hex. In the
        # environment, not in ~/.ray/auth_token: nothing of ours is left in the user's home.
        env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    return env


def make_this_process_private() -> None:
    private_env(os.environ)
