"""Wall-clock time in the units the API uses."""

import time


def now() -> int:
    """Unix seconds, as every OpenAI timestamp is."""
    return int(time.time())


def now_f() -> float:
    """Unix seconds with fractions, for leases."""
    return time.time()
