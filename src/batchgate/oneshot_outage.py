"""What `batchgate run` says while an upstream is down: one line when every replica of a route is down (what it
waits for, and that no attempt is spent), one when it answers again."""

from __future__ import annotations

from rich.console import Console

from batchgate.upstream.router import Router


class Outage:
    def __init__(self, router: Router, console: Console) -> None:
        self._router = router
        self._console = console
        self._down: set[str] = set()

    def check(self) -> bool:
        """Print what changed since the last call; True while some route is down."""
        down = {r.name: r for r in self._router.down()}
        for name in sorted(down.keys() - self._down):
            pool = down[name].pool
            where = ", ".join(r.name for r in pool.replicas)
            why = next((r.last_error for r in pool.replicas if r.last_error), "")
            self._console.print(f"waiting: upstream {name} ({where}) is down ({why}); its requests wait without "
                                f"spending attempts until it answers (Ctrl-C stops; --fail-fast stops at once)")
        for name in sorted(self._down - down.keys()):
            self._console.print(f"upstream {name} answers again; sending resumed")
        self._down = set(down)
        return bool(down)

    def describe(self) -> str:
        return "upstream " + ", ".join(sorted(self._down)) + " is down"
