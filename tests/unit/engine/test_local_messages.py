"""The local engine answers Anthropic's Messages (/v1/messages) through the chat translation: `echo` always,
SmolLM2-135M-Instruct when installed; each answer validated by the `anthropic` SDK's own Message type."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message

from batchgate.engine import registry

from .conftest import Local
from .support import needs

MESSAGES = "/v1/messages"


def params(model: str, text: str, **more: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": text}], **more}


def test_echo_answers_a_message(local: Local) -> None:
    status, body = local.send(MESSAGES, params("echo", "one two three", system="sys"))
    assert status == 200, body
    message = Message.model_validate(body)
    assert [b.text for b in message.content if b.type == "text"] == ["one two three"]
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("end_turn", 4, 3)


def test_echo_refuses_what_it_cannot_read_in_anthropic_shape(local: Local) -> None:
    image = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]
    status, body = local.send(MESSAGES, params("echo", "", messages=[{"role": "user", "content": image}]))
    assert status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    status, body = local.send(MESSAGES, params("hash", "x"))
    assert status == 400 and body["error"]["type"] == "invalid_request_error"  # an embedding model


@pytest.mark.local_models
@needs(registry.SMOLLM)
def test_smollm_answers_a_message(local: Local) -> None:
    status, body = local.send(MESSAGES, params("SmolLM2-135M-Instruct", "What is the capital of France?",
                                               system="Answer briefly.", max_tokens=8, temperature=0))
    assert status == 200, body
    message = Message.model_validate(body)
    assert message.model == "SmolLM2-135M-Instruct" and message.content[0].type == "text"
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 5 and 0 < message.usage.output_tokens <= 8
