"""SmolLM2-135M-Instruct chat and completions on llama.cpp, `n` choices decoded in parallel slots.

`n` is fanned out as n one-choice requests (seed + i when a seed is given) so the choices decode
in separate slots at once and `usage` counts every choice's tokens; llama.cpp's own `n` decodes
them one after another and reports the tokens of one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from batchgate.engine import params
from batchgate.engine.llama import CHAT, COMPLETIONS, LlamaServer
from batchgate.engine.responses import (
    Usage,
    chat_choice,
    chat_completion,
    chat_message,
    text_choice,
    text_completion,
)

# Fields llama.cpp must not see from the caller: ours to set, or meaningless in one whole answer.
_DROPPED = ("model", "n", "stream", "stream_options", "max_completion_tokens", "max_tokens")


def _one_choice_bodies(body: Mapping[str, Any], sampling: params.Sampling, time_limit: float) -> list[dict[str, Any]]:
    base = {k: v for k, v in body.items() if k not in _DROPPED}
    base["n"] = 1
    if sampling.max_tokens is not None:
        base["max_tokens"] = sampling.max_tokens
    if math.isfinite(time_limit) and time_limit > 0 and "t_max_predict_ms" not in base:
        # Past the caller's timeout nobody reads the answer; free the slot then.
        base["t_max_predict_ms"] = int(time_limit * 1000)
    bodies = []
    for i in range(sampling.n):
        one = dict(base)
        if sampling.seed is not None:
            one["seed"] = (sampling.seed + i) % 2**32  # llama.cpp seeds are uint32
        bodies.append(one)
    return bodies


class SmolLMChat:
    """The async face of a LlamaServer: validation, fan-out over slots, an OpenAI body back."""

    def __init__(self, server: LlamaServer, pool: Executor) -> None:
        self._server = server
        self._pool = pool

    async def _calls(self, endpoint: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self._pool, self._server.call, endpoint, b) for b in bodies]
        try:
            return list(await asyncio.gather(*futures))
        finally:
            for future in futures:  # on timeout, requests still queued for a slot are dropped
                future.cancel()

    async def chat(self, model: str, body: Mapping[str, Any], time_limit: float) -> dict[str, Any]:
        params.messages(body)
        sampling = params.sampling(body)
        answers = await self._calls(CHAT, _one_choice_bodies(body, sampling, time_limit))
        choices = []
        for i, answer in enumerate(answers):
            got = answer["choices"][0]
            message = got.get("message") or {}
            choices.append(
                chat_choice(
                    i,
                    chat_message(message.get("content"), message),
                    got.get("finish_reason") or "stop",
                    got.get("logprobs"),
                )
            )
        usage = Usage(answers[0]["usage"]["prompt_tokens"], sum(a["usage"]["completion_tokens"] for a in answers))
        return chat_completion(model, choices, usage)

    async def complete(self, model: str, body: Mapping[str, Any], time_limit: float) -> dict[str, Any]:
        prompts = params.prompts(body)
        sampling = params.sampling(body)
        per_prompt = _one_choice_bodies(body, sampling, time_limit)
        bodies = [{**one, "prompt": prompt} for prompt in prompts for one in per_prompt]
        answers = await self._calls(COMPLETIONS, bodies)
        choices = []
        for i, answer in enumerate(answers):
            got = answer["choices"][0]
            choices.append(text_choice(i, got.get("text", ""), got.get("finish_reason") or "stop", got.get("logprobs")))
        # Each prompt's tokens count once, however many choices it has.
        prompt_tokens = sum(a["usage"]["prompt_tokens"] for a in answers[:: sampling.n])
        usage = Usage(prompt_tokens, sum(a["usage"]["completion_tokens"] for a in answers))
        return text_completion(model, choices, usage)
