"""API keys: created hashed, checked per request, mapped to the project whose objects they may see."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from batchgate import clock, ids
from batchgate.errors import NotFound, PermissionDenied, Unauthorized
from batchgate.protocol.requests import CreateKey
from batchgate.store.base import KeyInfo, KeyStore

ANONYMOUS_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    project: str
    admin: bool = False
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class Admin:
    """A caller found to hold an admin key (by `AuthService.admin`): what admin-only operations take, so that
    none of them can run for a Principal nobody checked."""

    who: Principal


# Whoever runs `batchgate keys ...` on a machine that holds the store: they can read and write every row already.
OPERATOR = Admin(Principal("*", admin=True))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AuthService:
    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._keys_exist = False  # once true it stays true: an API without keys again stays locked

    async def keys_exist(self) -> bool:
        # Asked on every request until the first key exists, so a key created by the CLI takes effect at once.
        if not self._keys_exist:
            self._keys_exist = await self._store.has_keys()
        return self._keys_exist

    async def authenticate(self, authorization: str | None) -> Principal:
        token = _bearer(authorization)
        if not await self.keys_exist():
            return Principal(ANONYMOUS_PROJECT)
        if token is None:
            raise Unauthorized(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        digest = hash_key(token)
        info = await self._store.find_key(digest)
        # The lookup is by hash; compare again in constant time so timing says nothing about near misses.
        if info is None or not hmac.compare_digest(digest, hash_key(token)):
            raise Unauthorized(f"Incorrect API key provided: {_redact(token)}.", code="invalid_api_key")
        return Principal(info.project, info.admin, info.id)

    def admin(self, who: Principal) -> Admin:
        """`who` as an Admin, or 403. Asked before an admin-only request's body is read, so that a project key
        learns nothing from it but the refusal."""
        if not who.admin:
            raise PermissionDenied("You have insufficient permissions for this operation: it needs an admin key.")
        return Admin(who)

    async def operator_view(self, authorization: str | None, open_to_all: bool) -> None:
        """Whether the caller may read every project's totals (GET /metrics): anyone where the operator opened
        them (`open_to_all`), else only an admin key (401 without a valid key, 403 with a project's)."""
        if not open_to_all:
            self.admin(await self.authenticate(authorization))

    async def create_key(self, project: str, admin: bool = False) -> str:
        return (await self.issue_key(OPERATOR, CreateKey(project, admin)))[1]

    async def issue_key(self, by: Admin, req: CreateKey) -> tuple[KeyInfo, str]:
        """A new key: its record and the secret (shown once; only its hash is stored)."""
        key, key_id, now = ids.api_key(), "key_" + secrets.token_hex(8), clock.now()
        await self._store.create_key(key_id, req.project, hash_key(key), req.admin, now)
        self._keys_exist = True
        return KeyInfo(key_id, req.project, req.admin, now), key

    async def list_keys(self, by: Admin) -> list[KeyInfo]:
        return await self._store.list_keys()

    async def revoke(self, by: Admin, key_id: str) -> None:
        if not await self._store.delete_key(key_id):
            raise NotFound(f"No such API key: {key_id}", param="key_id")


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _redact(token: str) -> str:
    return f"{token[:3]}***{token[-2:]}" if len(token) > 8 else "***"
