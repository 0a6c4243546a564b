"""Where an unfinished `batchgate run` keeps its batch, so that the same command run again resumes it.

One directory per batch holds the run's private SQLite database and file bytes, `run.json` (the batch's key)
and `run.lock`, locked (flock) while a process runs the batch, so that a second process of the same command
refuses instead of running the batch twice. The key is a hash of the input's bytes and of the options that
decide what each request returns: the endpoint and where requests go (the --config file's contents, else the
--upstream URL, else the local engine). API keys, concurrency, retries and the output paths are left out:
changing them still resumes the same batch."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO

import orjson

from batchgate.errors import ConfigError, RunLocked
from batchgate.settings import Settings

KEY_VERSION = b"batchgate-run/1"
RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
STDIN_FILE = "stdin.jsonl"
DEFAULT_ENDPOINT = "/v1/chat/completions"


def default_root() -> Path:
    """$XDG_STATE_HOME/batchgate/runs, else ~/.local/state/batchgate/runs (the XDG base directory spec: a
    relative XDG_STATE_HOME is ignored)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state") / "batchgate" / "runs"


class RunState:
    """One batch's directory, locked by this process until `close` (or `remove`, once its results are written).
    `input` is where the input's bytes are read from for the upload: the input file, or stdin's bytes copied
    into the directory."""

    def __init__(self, path: Path, given: bool, fd: int, input_path: Path, endpoint: str, spooled: bool) -> None:
        self.path = path
        self.input = input_path
        self.endpoint = endpoint
        self._spooled = spooled
        self._given = given  # --data-dir: remove only what the run put there, not the directory
        self._fd: int | None = fd

    def drop_spool(self) -> None:
        """The stored input file has stdin's bytes now (or had them already): the copy can go."""
        if self._spooled:
            self.input.unlink(missing_ok=True)

    def remove(self, settings: Settings) -> None:
        """The batch is over and its results are written: forget it, so the same command later runs afresh."""
        self.drop_spool()
        if self._given:
            db = settings.db_path
            for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"),
                      self.path / RUN_FILE, self.path / LOCK_FILE):
                p.unlink(missing_ok=True)
            shutil.rmtree(settings.blob_dir, ignore_errors=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def open_state(source: Path | None, endpoint: str | None, settings: Settings, data_dir: Path | None,
                     stdin: BinaryIO, pending: set[Path]) -> RunState:
    """Hash the input (copying stdin into the state directory on the way when `source` is None), derive the
    batch's key, and lock its directory: `data_dir`, else a directory per key under `default_root()`.
    `pending` holds the copy of stdin while it is not in the state directory yet."""
    root = data_dir or default_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        if source is None:
            return await _open_for_stdin(stdin, root, data_dir, endpoint, settings, pending)
    except OSError as e:
        raise ConfigError(f"cannot use the state directory {root}: {e.strerror or e}") from None
    try:
        digest = await asyncio.to_thread(_file_digest, source)
        endpoint = endpoint or _first_url(source) or DEFAULT_ENDPOINT
    except OSError as e:
        raise ConfigError(f"cannot read {source}: {e.strerror or e}") from None
    key = run_key(digest, endpoint, settings)
    path = data_dir or root / key
    try:
        fd = _lock(path, settings, key, str(source), data_dir is not None)
    except OSError as e:
        raise ConfigError(f"cannot use the state directory {path}: {e.strerror or e}") from None
    return RunState(path, data_dir is not None, fd, source, endpoint, spooled=False)


async def _open_for_stdin(stdin: BinaryIO, root: Path, data_dir: Path | None, endpoint: str | None,
                          settings: Settings, pending: set[Path]) -> RunState:
    spool = root / f".stdin-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
    pending.add(spool)
    fd: int | None = None
    try:
        digest = await asyncio.to_thread(_copy_hashing, stdin, spool)
        endpoint = endpoint or _first_url(spool) or DEFAULT_ENDPOINT
        key = run_key(digest, endpoint, settings)
        path = data_dir or root / key
        fd = _lock(path, settings, key, "stdin", data_dir is not None)
        spool.replace(path / STDIN_FILE)
    except BaseException:
        spool.unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)
        raise
    finally:
        pending.discard(spool)
    return RunState(path, data_dir is not None, fd, path / STDIN_FILE, endpoint, spooled=True)


def run_key(input_digest: str, endpoint: str, settings: Settings) -> str:
    h = hashlib.sha256(KEY_VERSION)
    for part in (input_digest, endpoint, _destination(settings)):
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:32]


def _destination(settings: Settings) -> str:
    """Where requests go, as the router decides it (a config file wins over --upstream)."""
    if settings.config is not None:
        try:
            return "config:" + hashlib.sha256(settings.config.read_bytes()).hexdigest()
        except OSError as e:
            raise ConfigError(f"cannot read config file {settings.config}: {e.strerror or e}") from None
    if settings.upstream:
        return "upstream:" + settings.upstream.rstrip("/")
    return "local"


def _lock(path: Path, settings: Settings, key: str, label: str, given: bool) -> int:
    """Lock `path` for this process (RunLocked when another holds it) and claim it for batch `key`."""
    while True:
        path.mkdir(parents=True, exist_ok=True)
        lock = path / LOCK_FILE
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLocked(f"another `batchgate run` is running this batch already (state in {path})") from None
        # The run that held the lock may have finished and removed its directory between our open and our
        # flock: then this is a lock on a deleted file, and the new one must be taken.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)
    try:
        _claim(path, settings.model_copy(update={"data_dir": path}), key, label, given)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _claim(path: Path, settings: Settings, key: str, label: str, given: bool) -> None:
    """Check that the directory is this batch's (or new), and say so in run.json."""
    run_file = path / RUN_FILE
    try:
        info = json.loads(run_file.read_text())
    except FileNotFoundError:
        info = None
    except ValueError:
        info = {}
    if info is not None:
        if not isinstance(info, dict) or info.get("key") != key:
            other = info.get("input", "?") if isinstance(info, dict) else "?"
            raise ConfigError(f"{path} holds an unfinished run of another input or other options ({other}); "
                              "finish it with its own command, or choose another --data-dir")
        return
    if given and (settings.db_path.exists() or settings.blob_dir.exists()):
        # Most likely a server's data directory: a run would add its batch there, then remove it all when done.
        raise ConfigError(f"--data-dir {path} holds batchgate data that no `batchgate run` made; choose another "
                          "directory")
    tmp = path / f".{RUN_FILE}.tmp"
    tmp.write_text(json.dumps({"key": key, "input": label}))
    tmp.replace(run_file)


def _copy_hashing(source: BinaryIO, dest: Path) -> str:
    h = hashlib.sha256()
    with dest.open("wb") as out:
        while block := source.read(1 << 20):
            h.update(block)
            out.write(block)
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _first_url(path: Path) -> str | None:
    with path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    url = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf")).get("url")
                except (orjson.JSONDecodeError, AttributeError):
                    return None
                return url if isinstance(url, str) else None
    return None
