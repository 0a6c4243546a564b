"""Who holds a lease, and whether that process is still alive (when it ran on this host)."""

from __future__ import annotations

import os
import secrets
import socket


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def is_dead_local(owner: str, me: str) -> bool:
    """True only when `owner` certainly is gone: it ran on this host and its process no longer exists.
    Leases of other hosts are left to expire on their own."""
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if owner == me or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # same pid, other token: an earlier incarnation of this process id
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
