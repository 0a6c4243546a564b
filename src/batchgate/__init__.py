"""batchgate: a self-hosted, OpenAI-compatible Batch API."""

__version__ = "0.1.0"
