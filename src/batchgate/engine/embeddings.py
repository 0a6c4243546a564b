"""all-MiniLM-L6-v2 behind `/v1/embeddings`: inputs of concurrent requests share model batches."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

from batchgate.engine import params
from batchgate.engine.batcher import Batcher
from batchgate.engine.minilm import DIMENSIONS, MiniLM
from batchgate.engine.responses import embedding_list
from batchgate.errors import InvalidValue

Embedded = tuple[list[float], int]  # unit vector, token count


class MiniLMEmbeddings:
    def __init__(self, model: MiniLM, pool: Executor, batch_size: int) -> None:
        self._model = model
        self._batch_size = batch_size
        self._batcher: Batcher[str, Embedded] = Batcher(self._compute, pool, batch_size)

    def _compute(self, texts: list[str]) -> list[Embedded]:
        vectors, counts = self._model.embed(texts, self._batch_size)
        return list(zip(vectors, counts, strict=True))

    def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.close()

    @staticmethod
    def check(request: params.EmbeddingRequest) -> list[str]:
        # The model was not trained to be truncated (not Matryoshka): refuse, as vLLM does.
        if request.dimensions not in (None, DIMENSIONS):
            raise InvalidValue(f"This model only returns {DIMENSIONS} dimensions.", param="dimensions")
        return [params.require_text(item, "input") for item in request.inputs]

    async def answer(self, model: str, request: params.EmbeddingRequest) -> dict[str, Any]:
        texts = self.check(request)
        embedded = await self._batcher.run(texts)
        tokens = sum(count for _, count in embedded)
        return embedding_list(model, [v for v, _ in embedded], request.encoding_format, tokens)
