"""The local engine: in-process models behind the same Executor interface as an HTTP upstream.

It answers like an OpenAI-compatible server: a bad request is a 4xx with an OpenAI error envelope,
never an exception. Models load on first use, in a worker thread; model compute runs in worker
threads too, so the event loop only routes and serialises.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from batchgate import ids
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.engine import params, registry
from batchgate.engine.echo import EchoModel
from batchgate.engine.embeddings import MiniLMEmbeddings
from batchgate.engine.hashembed import HashEmbedder
from batchgate.engine.lanes import Lane, lanes
from batchgate.engine.llama import LlamaServer
from batchgate.engine.minilm import MiniLM
from batchgate.engine.registry import ModelKind, ModelSpec
from batchgate.engine.smollm import SmolLMChat
from batchgate.engine.weights import WeightCheck
from batchgate.errors import BatchgateError, InvalidRequest, NotFound
from batchgate.upstream.executor import ModelUnavailable, Sending, TransportError, UpstreamResponse
from batchgate.upstream.messages import CHAT, via_chat

_M = TypeVar("_M")

_ENDPOINTS = {
    "/v1/chat/completions": ModelKind.CHAT,
    "/v1/completions": ModelKind.CHAT,
    "/v1/embeddings": ModelKind.EMBEDDINGS,
}
# Above this many floats the hash model leaves the event loop (pure Python, ~0.1 us per float).
_HASH_INLINE_FLOATS = 16_384
CONTEXT_PER_SLOT = 2048  # tokens per chat slot; SmolLM2 was trained on 8192 in all


async def _settled(task: asyncio.Task[_M] | None) -> _M | None:
    """Stop a model load if it is still running; its result if it finished."""
    if task is None:
        return None
    task.cancel()  # no effect on a finished task
    try:
        return await task
    except (asyncio.CancelledError, Exception):  # already raised to the requests that waited on it
        return None


def _endpoint(endpoint: str) -> str:
    path = "/" + endpoint.strip("/")
    return path if path.startswith("/v1/") else "/v1" + path


class LocalEngine:
    """Serves echo, hash, all-MiniLM-L6-v2 and SmolLM2-135M-Instruct in this process.

    chat_slots: sequences SmolLM2 decodes at once (llama.cpp parallel slots).
    embed_batch_size: most inputs in one MiniLM model call, gathered across concurrent requests.
    threads: CPU threads per model call (default: all cores).
    """

    name = "local"

    def __init__(self, chat_slots: int = 4, embed_batch_size: int = 32, threads: int | None = None) -> None:
        if chat_slots < 1 or embed_batch_size < 1:
            raise ValueError("chat_slots and embed_batch_size must be at least 1")
        self._chat_slots = chat_slots
        self._embed_batch_size = embed_batch_size
        self._threads = threads
        self._weights = WeightCheck()
        self._echo = EchoModel()
        self._hash = HashEmbedder()
        # One thread per slot keeps every llama.cpp slot fed; MiniLM batches run one at a time
        # (onnxruntime already spreads one batch over all cores).
        self._chat_pool = ThreadPoolExecutor(chat_slots, thread_name_prefix="batchgate-chat")
        self._embed_pool = ThreadPoolExecutor(1, thread_name_prefix="batchgate-embed")
        self._llama: LlamaServer | None = None
        # A load is a task that the first request starts and every request awaits; close() ends it.
        self._chat_loading: asyncio.Task[SmolLMChat] | None = None
        self._embed_loading: asyncio.Task[MiniLMEmbeddings] | None = None

    def lanes(self) -> tuple[Lane, ...]:
        """Its models by what bounds them, each with the requests worth having in flight (engine/lanes.py): the chat
        slots and a small margin, two embedding batches, and a cheap window for echo and hash. More would only wait
        inside the engine, where the request timeout runs."""
        return lanes(self._chat_slots, self._embed_batch_size)

    async def start(self) -> None:
        """Nothing to do: models load on first use (see `load` to load ahead)."""

    async def close(self) -> None:
        chat, embed = self._chat_loading, self._embed_loading
        self._chat_loading = self._embed_loading = None
        await _settled(chat)
        embeddings = await _settled(embed)
        if embeddings is not None:
            await embeddings.close()
        for pool in (self._chat_pool, self._embed_pool):
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        if self._llama is not None:
            await asyncio.to_thread(self._llama.close)
            self._llama = None

    def check_model(self, model: str) -> None:
        spec = registry.find(model)
        if spec is None:
            known = ", ".join(s.id for s in registry.MODELS)
            raise ModelUnavailable(f"The local engine has no model '{model}'; it knows: {known}.")
        self._weights.verify(spec)

    def list_models(self) -> list[str]:
        return [spec.id for spec in registry.MODELS if registry.installed(spec)]

    def endpoints(self, model: str) -> tuple[str, ...]:
        spec = registry.find(model)
        if spec is None:
            return ()
        served = tuple(path for path, kind in _ENDPOINTS.items() if kind is spec.kind)
        # Anthropic's Messages, translated to chat completions (domain/messages.py)
        return (*served, MESSAGES_ENDPOINT) if CHAT in served else served

    async def load(self, model: str) -> None:
        """Load `model` now rather than on its first request. Raises ModelUnavailable."""
        spec = registry.find(model)
        if spec is None:
            self.check_model(model)
        elif spec is registry.SMOLLM:
            await self._chat_model()
        elif spec is registry.MINILM:
            await self._embedding_model()

    # The Executor protocol fixes the signature; the timeout is applied here, with wait_for.
    async def send(self, endpoint: str, body: dict[str, Any], timeout: float,
                   sending: Sending | None = None) -> UpstreamResponse:
        """Answer one request. Raises TransportError('timeout') past `timeout` seconds, and
        ModelUnavailable when a known model is not installed or fails its checksum. (`sending` is not told: each
        lane's window is tied to its slots, so what waits for a slot is the engine's own queue.)"""
        if endpoint == MESSAGES_ENDPOINT:
            return await via_chat(self.send, body, timeout)
        request_id = ids.request_id()
        try:
            answer = await asyncio.wait_for(self._answer(endpoint, body, time_limit=timeout), timeout)
        except BatchgateError as err:
            return UpstreamResponse(err.status_code, orjson.dumps(err.envelope()), request_id)
        except TimeoutError:
            raise TransportError("timeout", f"the local model did not answer within {timeout:g}s") from None
        return UpstreamResponse(200, orjson.dumps(answer), request_id)

    async def _answer(self, endpoint: str, body: dict[str, Any], time_limit: float) -> dict[str, Any]:
        path = _endpoint(endpoint)
        kind = _ENDPOINTS.get(path)
        if kind is None:
            raise NotFound(f"Invalid URL (POST {endpoint})", code="unknown_url")
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        model = params.model_name(body)
        spec = registry.find(model)
        if spec is None:
            raise NotFound(
                f"The model '{model}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        if spec.kind is not kind:
            raise InvalidRequest(f"The model '{spec.id}' does not support {path}.", param="model")
        params.refuse_streaming(body)
        return await self._run(spec, path, body, time_limit)

    async def _run(self, spec: ModelSpec, path: str, body: dict[str, Any], time_limit: float) -> dict[str, Any]:
        if spec is registry.ECHO:
            if path == "/v1/chat/completions":
                return self._echo.chat(spec.id, body)
            return self._echo.complete(spec.id, body)
        if spec is registry.HASH:
            request = self._hash.request(body)
            if len(request.inputs) * (request.dimensions or 384) <= _HASH_INLINE_FLOATS:
                return self._hash.answer(spec.id, request)
            return await asyncio.to_thread(self._hash.answer, spec.id, request)
        if spec is registry.MINILM:
            request = params.embedding_request(body)
            MiniLMEmbeddings.check(request)  # a bad request is refused before the model loads
            return await (await self._embedding_model()).answer(spec.id, request)
        if spec is registry.SMOLLM:
            chat = path == "/v1/chat/completions"
            if chat:
                params.messages(body)
            else:
                params.prompts(body)
            params.sampling(body)
            model = await self._chat_model()
            if chat:
                return await model.chat(spec.id, body, time_limit)
            return await model.complete(spec.id, body, time_limit)
        raise NotFound(f"The model '{spec.id}' has no local implementation.", code="model_not_found")

    async def _verified(self, spec: ModelSpec) -> Path:
        # Hashing ~100 MB is too slow for the event loop the first time.
        path = await asyncio.to_thread(self._weights.verify, spec)
        assert path is not None  # only models with weights are loaded
        return path

    async def _load_chat(self) -> SmolLMChat:
        gguf = await self._verified(registry.SMOLLM)
        loop = asyncio.get_running_loop()
        self._llama = await loop.run_in_executor(
            self._chat_pool, LlamaServer, gguf, self._chat_slots, CONTEXT_PER_SLOT, self._threads
        )
        return SmolLMChat(self._llama, self._chat_pool)

    async def _load_embeddings(self) -> MiniLMEmbeddings:
        onnx = await self._verified(registry.MINILM)
        loop = asyncio.get_running_loop()
        model = await loop.run_in_executor(self._embed_pool, MiniLM, onnx, self._threads)
        embeddings = MiniLMEmbeddings(model, self._embed_pool, self._embed_batch_size)
        embeddings.start()
        return embeddings

    async def _chat_model(self) -> SmolLMChat:
        if self._chat_loading is None:
            self._chat_loading = asyncio.create_task(self._load_chat(), name="load-smollm")
        return await self._loaded(self._chat_loading)

    async def _embedding_model(self) -> MiniLMEmbeddings:
        if self._embed_loading is None:
            self._embed_loading = asyncio.create_task(self._load_embeddings(), name="load-minilm")
        return await self._loaded(self._embed_loading)

    async def _loaded(self, task: asyncio.Task[_M]) -> _M:
        # Shielded: a request that times out while the model loads must not abort the load that
        # the requests behind it wait on.
        try:
            return await asyncio.shield(task)
        except ModelUnavailable:
            # Not cached: installing the package fixes it without a restart.
            if task is self._chat_loading:
                self._chat_loading = None
            if task is self._embed_loading:
                self._embed_loading = None
            raise
