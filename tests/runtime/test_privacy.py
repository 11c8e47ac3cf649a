"""Token authentication stays on for the clusters the runtime starts; never turned off to quiet Ray."""

from __future__ import annotations

from pathlib import Path

from migrator.runtime import privacy, runner

ROOT = Path(__file__).resolve().parents[2]


def test_private_env_turns_token_auth_on_with_a_fresh_token() -> None:
    a, b = privacy.private_env({}), privacy.private_env({})
    assert a["RAY_AUTH_MODE"] == "token" and len(a["RAY_AUTH_TOKEN"]) == 64
    assert a["RAY_AUTH_TOKEN"] != b["RAY_AUTH_TOKEN"]


def test_a_users_own_choice_is_kept() -> None:
    assert privacy.private_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/t"}) == {
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/t"}
    assert privacy.private_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "x"})["RAY_AUTH_TOKEN"] == "x"


def test_children_get_token_auth(monkeypatch) -> None:
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    env = runner.child_env(None)
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"]


def test_nothing_turns_authentication_off() -> None:
    offenders = [str(p.relative_to(ROOT)) for folder in ("migrator", "tests") for p in (ROOT / folder).rglob("*.py")
                 if '"disabled"' in p.read_text() and "RAY_AUTH_MODE" in p.read_text() and p.name != "test_privacy.py"]
    assert offenders == []
