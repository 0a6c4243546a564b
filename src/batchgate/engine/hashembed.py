"""`hash`: deterministic embeddings from a hash of the text, in pure stdlib (no numpy).

The same text always gives the same unit vector, different texts give unrelated ones; good for
testing batch plumbing, useless for meaning.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from batchgate.engine import params
from batchgate.engine.echo import count_tokens
from batchgate.engine.responses import embedding_list

DEFAULT_DIMENSIONS = 384
_HALF = 2.0**31


def hash_vector(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    # SHAKE-256 is an extendable-output hash: the first k values are the same whatever the length
    # asked for, so `dimensions` truncates a longer vector (then renormalises) like OpenAI's models.
    digest = hashlib.shake_256(text.encode("utf-8")).digest(4 * dimensions)
    raw = [x / _HALF - 1.0 for x in struct.unpack(f"<{dimensions}I", digest)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def embed_inputs(inputs: Sequence[params.Prompt], dimensions: int) -> list[list[float]]:
    return [hash_vector(params.as_text(item), dimensions) for item in inputs]


class HashEmbedder:
    def request(self, body: Mapping[str, Any]) -> params.EmbeddingRequest:
        return params.embedding_request(body)

    def answer(self, model: str, request: params.EmbeddingRequest) -> dict[str, Any]:
        dims = request.dimensions or DEFAULT_DIMENSIONS
        vectors = embed_inputs(request.inputs, dims)
        tokens = sum(len(i) if isinstance(i, list) else count_tokens(i) for i in request.inputs)
        return embedding_list(model, vectors, request.encoding_format, tokens)
