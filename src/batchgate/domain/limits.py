"""OpenAI's documented limits for batches, files and uploads."""

from __future__ import annotations

from dataclasses import dataclass

# The per-batch figures are only defaults: `BatchLimits` carries the configured ones (settings.py).
MAX_BATCH_REQUESTS = 50_000
MAX_BATCH_FILE_BYTES = 209_715_200  # 200 MB, the figure in OpenAI's own error text
MAX_EMBEDDING_INPUTS = 50_000
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MIN_EXPIRES_SECONDS = 3600
MAX_EXPIRES_SECONDS = 2_592_000
BATCH_FILE_DEFAULT_EXPIRY = 2_592_000  # purpose=batch files expire after 30 days
OUTPUT_FILE_DEFAULT_EXPIRY = 2_592_000
UPLOAD_LIFETIME = 3600
UPLOAD_MAX_BYTES = 8 * 1024**3
UPLOAD_PART_MAX_BYTES = 64 * 1024 * 1024
MIN_WINDOW_SECONDS = 3600
MAX_WINDOW_SECONDS = 7 * 86400
FILES_LIST_MAX = 10_000
BATCHES_LIST_MAX = 100
BATCHES_LIST_DEFAULT = 20
# Anthropic's Message Batches (the defaults of their settings; list bounds as Anthropic's).
ANTHROPIC_MAX_BATCH_REQUESTS = 100_000
ANTHROPIC_MAX_BATCH_BYTES = 256 * 1024 * 1024
MESSAGE_BATCHES_LIST_MAX = 1000
MESSAGE_BATCHES_LIST_DEFAULT = 20


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """What one batch may hold. 0 means no limit (`batchgate run`'s default, like `vllm run-batch`)."""

    requests: int = MAX_BATCH_REQUESTS
    file_bytes: int = MAX_BATCH_FILE_BYTES
    embedding_inputs: int = MAX_EMBEDDING_INPUTS

    def file_too_large(self, size: int) -> bool:
        return 0 < self.file_bytes < size

    def too_many_requests(self, count: int) -> bool:
        return 0 < self.requests < count

    def too_many_embedding_inputs(self, count: int) -> bool:
        return 0 < self.embedding_inputs < count


OPENAI_LIMITS = BatchLimits()
