"""One settings object. Every knob is typed, defaulted, described, and documented in docs/configuration.md."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from batchgate.domain import limits
from batchgate.domain.limits import BatchLimits

# The limits `batchgate run` lifts unless they are set (in the environment or as values): OpenAI's per-batch
# figures, and the size of a file taken in (run reads a local file, not an upload).
ONE_SHOT_LIFTED = ("max_batch_requests", "max_batch_file_bytes", "max_batch_embedding_inputs", "max_upload_bytes")


class Settings(BaseSettings):
    """Every setting can be given as a CLI flag (where one exists) or a `BATCHGATE_<NAME>` environment variable."""

    model_config = SettingsConfigDict(env_prefix="BATCHGATE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the HTTP server listens on.")
    data_dir: Path = Field(Path("./batchgate-data"), description="Directory for the SQLite database and file bytes.")
    database_url: str | None = Field(
        None, description="`postgresql://user:pass@host:5432/db` keeps metadata in PostgreSQL (shared by many "
        "processes and machines; needs `batchgate[postgres]`). Unset: SQLite in the data directory."
    )
    database_pool_size: int = Field(10, ge=1, description="Most PostgreSQL connections one process opens.")
    storage_url: str | None = Field(
        None, description="`s3://bucket/prefix` keeps file bytes in S3-compatible object storage (needs "
        "`batchgate[s3]`). Unset: the data directory."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint for non-AWS storage (MinIO, Ceph, R2, ...); path-style addressing is "
        "used when set. Unset: AWS."
    )
    s3_region: str | None = Field(None, description="S3 region (unset: the AWS SDK's default chain).")
    s3_access_key_id: str | None = Field(
        None, description="S3 access key id (unset: the AWS SDK's default chain: environment, profile, instance role)."
    )
    s3_secret_access_key: str | None = Field(
        None, description="S3 secret access key, with `BATCHGATE_S3_ACCESS_KEY_ID`."
    )
    s3_part_size: int = Field(
        8 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024 * 1024 * 1024,
        description="Bytes per part of a multipart upload (5 MiB to 5 GiB); at most one part per writer is held in "
        "memory.",
    )
    upstream: str | None = Field(
        None, description="Base URL (ending in /v1) of an OpenAI-compatible server that gets every model."
    )
    upstream_api_key: str | None = Field(None, description="Bearer key sent to --upstream.")
    upstream_messages: Literal["native", "translate"] = Field(
        "translate", description="How the lines of Anthropic Message Batches reach an HTTP upstream: `native` posts "
        "them to its `/v1/messages` (vLLM and llama.cpp's server serve one), `translate` sends them as chat "
        "completions and translates the answers back. A route of the routing file may say otherwise (`messages`)."
    )
    config: Path | None = Field(None, description="TOML file routing models to one or more upstreams.")
    upstream_concurrency: int | None = Field(
        None,
        ge=1,
        description="Cap on requests in flight per upstream (when its config gives no `max_concurrency`). Unset: "
        "adaptive, from 8 up to 4096: what the upstream runs at once (its rate of answers x its latency without "
        "a queue) plus a small margin, lowered by 429s and timeouts.",
    )
    overload_max_seconds: float = Field(
        900.0,
        gt=0,
        description="How long one request keeps being retried on 429 (or 503 with Retry-After) before those "
        "count against `max_attempts`; overload shrinks the window instead of failing requests.",
    )
    prefix_grouping: bool = Field(
        True, description="Dispatch requests that share a prompt prefix together, so engine prefix caches hit."
    )
    prefix_affinity: bool = Field(
        True, description="Send requests that share a prompt prefix to the replica of their route that served it "
        "before, so each replica's prefix cache hits; false spreads them by free capacity alone.",
    )
    request_timeout: float = Field(600.0, gt=0, description="Seconds one upstream request may take before retry.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to establish a connection to an upstream.")
    max_attempts: int = Field(
        6, ge=1, description="Attempts per request (first try included) on 429, 5xx, timeouts and dropped connections."
    )
    retry_base_seconds: float = Field(0.5, gt=0, description="First retry delay; doubles each attempt, with jitter.")
    retry_max_seconds: float = Field(30.0, gt=0, description="Longest delay between two attempts of one request.")
    lease_seconds: float = Field(
        15.0, gt=0, description="How long a worker's claim on a chunk or batch lasts without a heartbeat."
    )
    heartbeat_seconds: float | None = Field(
        None, gt=0, description="How often leases are renewed and cancellation checked (default: lease_seconds / 3)."
    )
    poll_interval: float = Field(0.2, gt=0, description="Seconds an idle worker waits before looking for work again.")
    chunk_size: int = Field(256, ge=1, le=10_000, description="Requests per claimable chunk of a batch.")
    max_chunks_in_flight: int = Field(
        32, ge=1, description="Most chunks one worker process holds at once; it takes more only while "
        "its upstreams have fewer requests waiting than one chunk."
    )
    window_scale: float = Field(
        1.0, gt=0, description="Multiplier applied to every completion window; tests use a tiny value to force expiry."
    )
    max_validation_errors: int = Field(
        100, ge=1, description="Most per-line errors reported on a failed batch before a final summary entry."
    )
    max_batch_requests: int = Field(
        limits.MAX_BATCH_REQUESTS, ge=0, description="Most requests in one batch input file (OpenAI's figure); a "
        "batch over it fails validation with `too_many_tasks`, whose message states the configured figure. 0: no "
        "limit. `batchgate run` defaults to 0 (like `vllm run-batch`) unless this is set."
    )
    max_batch_file_bytes: int = Field(
        limits.MAX_BATCH_FILE_BYTES, ge=0, description="Largest batch input file in bytes (OpenAI's 200 MB); a "
        "batch over it fails validation with `file_too_large`. 0: no limit (`batchgate run`'s default unless set). "
        "Large files reach the server through `/v1/uploads` (up to 8 GB, in parts of up to 64 MB: the SDK's "
        "`client.uploads.upload_file_chunked`), not `POST /v1/files`, which stops at `max_upload_bytes`."
    )
    max_batch_embedding_inputs: int = Field(
        limits.MAX_EMBEDDING_INPUTS, ge=0, description="Most embedding inputs across the lines of one "
        "`/v1/embeddings` batch (OpenAI's figure); a batch over it fails validation with `too_many_tasks`. 0: no "
        "limit (`batchgate run`'s default unless set)."
    )
    max_upload_bytes: int = Field(
        512 * 1024 * 1024, ge=0, description="Largest file accepted by POST /v1/files (OpenAI: 512 MB); larger files "
        "go through `/v1/uploads` (up to 8 GB). 0: no limit. `batchgate run` reads a local file and has no limit "
        "unless this is set."
    )
    upload_rate_limit: int = Field(
        1000, ge=0, description="File uploads (POST /v1/files and /v1/uploads) per minute per API key; "
        "0: no limit. Over it: 429 with `Retry-After`."
    )
    batch_rate_limit: int = Field(
        2000, ge=0, description="Batches created per hour per API key; 0: no limit. Over it: 429 with `Retry-After`."
    )
    enqueued_token_limit: int | None = Field(
        None, ge=1, description="Most prompt tokens one project may have enqueued per model, counted with the "
        "o200k_base tokenizer (needs `batchgate[tokens]`); a batch over it fails with `token_limit_exceeded`. "
        "Unset: no limit.",
    )
    max_json_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest JSON request body (413 beyond it); file bytes go through "
        "multipart uploads, not JSON."
    )
    anthropic_max_batch_requests: int = Field(
        limits.ANTHROPIC_MAX_BATCH_REQUESTS, ge=1, description="Most requests in one Anthropic Message Batch "
        "(Anthropic's figure); a larger create is a 400."
    )
    anthropic_max_batch_bytes: int = Field(
        limits.ANTHROPIC_MAX_BATCH_BYTES, ge=1024, description="Largest body of a Message Batch create request, in "
        "bytes (Anthropic's 256 MB); a larger one is a 413. The body is held in memory while it is read."
    )
    webhook_allow_private: bool = Field(
        True, description="Let webhook URLs point at loopback, private and link-local addresses (self-hosted "
        "receivers often live there); false refuses them when the endpoint is created and again when a name "
        "resolves at delivery. Only `http` and `https` URLs are ever accepted. See docs/webhooks.md."
    )
    webhook_timeout: float = Field(10.0, gt=0, description="Seconds a webhook receiver has to answer one delivery.")
    webhook_max_attempts: int = Field(
        18, ge=1, description="Attempts per webhook delivery (first try included) before it is given up; with the "
        "default delays, about three days."
    )
    webhook_retry_base_seconds: float = Field(
        5.0, gt=0, description="First webhook retry delay; six times longer each attempt (5 s, 30 s, 3 min, "
        "18 min, ...), with +-25% jitter."
    )
    webhook_retry_max_seconds: float = Field(
        6 * 3600.0, gt=0, description="Longest delay between two attempts of one webhook delivery."
    )
    worker: bool = Field(True, description="Run the worker inside `serve` (false: API only).")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text` (for people) or `json`: one JSON object per line with `ts`, `level`, `logger`, "
        "`message`, and `request_id` (the response's `x-request-id`) on every line logged while handling an API "
        "request, `batch_id` on the worker's lines about a batch. Uvicorn's lines use the same format. "
        "Credentials are never logged."
    )
    metrics_public: bool = Field(
        False, description="Serve `GET /metrics` without an API key on any address. Default: without a key only "
        "when bound to loopback; on another address it needs an admin key (Prometheus: "
        "`authorization: {credentials: ...}`)."
    )
    run_progress_seconds: float = Field(
        5.0, gt=0, description="Seconds between the progress lines `batchgate run` prints when stderr is not a "
        "terminal (under nohup, SLURM, docker logs); on a terminal it shows a live bar with failures and retries "
        "instead."
    )

    @classmethod
    def one_shot(cls, **values: Any) -> Settings:
        """Settings for `batchgate run`: like `vllm run-batch`, no size limits unless set explicitly."""
        settings = cls(**values)
        lifted = {name: 0 for name in ONE_SHOT_LIFTED if name not in settings.model_fields_set}
        return settings.model_copy(update=lifted)

    @property
    def batch_limits(self) -> BatchLimits:
        return BatchLimits(self.max_batch_requests, self.max_batch_file_bytes, self.max_batch_embedding_inputs)

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3

    @property
    def db_path(self) -> Path:
        return self.data_dir / "batchgate.sqlite3"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "files"

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
