"""A project's weight: its share of each upstream's capacity against the other projects with work for it.

Weighted fair queueing divides an upstream between the projects that have work for it in proportion to their
weights: two projects of weights 3 and 1 get 75% and 25% while both have work, and either gets all of it alone.
A project nobody gave a weight weighs DEFAULT_WEIGHT."""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_WEIGHT = 1.0
MAX_WEIGHT = 1000.0  # 0 < weight <= MAX_WEIGHT: a share of at least 1/1000 of the heaviest stays meaningful


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    weight: float = DEFAULT_WEIGHT


def weight_problem(weight: float) -> str | None:
    """Why `weight` cannot be a project's weight, or None when it can."""
    if not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT:
        return f"Invalid 'weight': must be a number greater than 0 and at most {MAX_WEIGHT:g}, got {weight:g}."
    return None
