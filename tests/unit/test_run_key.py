"""Which options make `batchgate run` a different batch (a fresh run) and which resume the same one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchgate.oneshot_state import default_root, run_key
from batchgate.settings import Settings

DIGEST = "a" * 64
CHAT = "/v1/chat/completions"


def key(digest: str = DIGEST, endpoint: str = CHAT, **settings: Any) -> str:
    return run_key(digest, endpoint, Settings(**settings))


def test_what_results_depend_on_makes_another_batch(tmp_path: Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[[upstreams]]\nurl = "http://x/v1"\n')
    b.write_text('[[upstreams]]\nurl = "http://y/v1"\n')
    keys = {
        key(),
        key(digest="b" * 64),
        key(endpoint="/v1/embeddings"),
        key(upstream="http://127.0.0.1:8001/v1"),
        key(upstream="http://127.0.0.1:8002/v1"),
        key(config=a),
        key(config=b),
    }
    assert len(keys) == 7


def test_what_does_not_change_results_resumes_the_same_batch(tmp_path: Path) -> None:
    up = "http://127.0.0.1:8001/v1"
    assert key(upstream=up) == key(upstream=up + "/", upstream_api_key="sk-other", upstream_concurrency=4,
                                   max_attempts=2, data_dir=tmp_path)
    config = tmp_path / "routes.toml"
    config.write_text('[[upstreams]]\nurl = "http://x/v1"\n')
    before = key(config=config)
    moved = tmp_path / "elsewhere.toml"
    config.rename(moved)
    assert key(config=moved) == before  # the file's contents count, not its name


def test_state_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_root() == tmp_path / "batchgate" / "runs"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")  # the spec says to ignore a relative one
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".local" / "state" / "batchgate" / "runs"
