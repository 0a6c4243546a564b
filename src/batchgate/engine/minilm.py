"""all-MiniLM-L6-v2 sentence embeddings: int8 ONNX on onnxruntime, WordPiece via `tokenizers`.

Reproduces sentence-transformers' pipeline (uncased BERT tokenizer, max_seq_length 256, mean
pooling over the attention mask, L2 normalisation) without torch. The methods block: call them
from a worker thread (onnxruntime releases the GIL while it computes).
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DIMENSIONS = 384
MAX_SEQ_LENGTH = 256  # sentence-transformers' setting for this model (the tokenizer allows 512)


def vocab_path() -> Path:
    return Path(str(importlib.resources.files("batchgate.engine") / "assets" / "all-MiniLM-L6-v2" / "vocab.txt"))


class MiniLM:
    """One loaded model. `embed` is safe to call from one thread at a time."""

    def __init__(self, onnx_path: Path, threads: int | None = None) -> None:
        # Imported here so the core install (no `local` extra) can import the engine.
        import onnxruntime
        from tokenizers import BertWordPieceTokenizer

        self._tokenizer: Any = BertWordPieceTokenizer(str(vocab_path()), lowercase=True)
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.log_severity_level = 3  # errors only; the default warns on every session
        # Idle intra-op threads would otherwise spin on the cores the event loop and llama.cpp
        # need between batches (measured: as fast or faster with spinning off on 2 cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str], batch_size: int) -> tuple[list[list[float]], list[int]]:
        """Unit vectors and token counts (with [CLS]/[SEP]) for `texts`, in order."""
        import numpy as np

        encodings = self._tokenizer.encode_batch(list(texts))
        counts = [len(e.ids) for e in encodings]
        # Similar lengths share a batch, so little compute goes to padding.
        order = sorted(range(len(texts)), key=counts.__getitem__)
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(counts[i] for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                ids[row, : counts[i]] = encodings[i].ids
                mask[row, : counts[i]] = 1
            hidden = self._session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for row, i in enumerate(chunk):
                vectors[i] = pooled[row].tolist()
        return vectors, counts
