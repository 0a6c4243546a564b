"""Stored files and multi-part uploads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
OUTPUT_PURPOSE = "batch_output"


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    project: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    expires_at: int | None = None

    def expired(self, now: int) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class UploadStatus(StrEnum):
    PENDING = "pending"  # accepting parts
    COMPLETED = "completed"  # parts assembled into a File
    CANCELLED = "cancelled"  # abandoned by the client
    EXPIRED = "expired"  # not completed within an hour


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    project: str
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    mime_type: str
    status: UploadStatus
    file_expires_after: int | None = None
    file_id: str | None = None

    def effective_status(self, now: int) -> UploadStatus:
        if self.status is UploadStatus.PENDING and self.expires_at <= now:
            return UploadStatus.EXPIRED
        return self.status


@dataclass(frozen=True, slots=True)
class UploadPart:
    id: str
    upload_id: str
    created_at: int
    bytes: int
    md5: str
