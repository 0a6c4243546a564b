"""Issue 16's yielding rule on a virtual clock (tests/support/engine_model.py): an interactive neighbour sends
requests at random straight to a FIFO engine of 64 slots; the engine's metrics are read every 0.5 s. Nothing
here is timed: the clock is the model's."""

from __future__ import annotations

import random

from engine_model import EngineModel, Load

from batchgate.upstream.limiter import NEIGHBOUR_GONE, AdaptiveLimiter

SLOTS, S = 64, 0.1


def engine(lim: AdaptiveLimiter, rho: float, seed: int = 3) -> EngineModel:
    rng = random.Random(seed)
    return EngineModel(lim, SLOTS, lambda now: S * rng.uniform(0.5, 1.5), post=0.002,
                       foreign_rate=rho * SLOTS / S, metrics_every=0.5, seed=seed)


def share(m: EngineModel, rho: float, seconds: float) -> float:
    """Our share of the capacity the neighbour leaves idle over the next `seconds` (measured from now)."""
    before = m.answered
    m.measure(seconds)
    return (m.answered - before) / seconds / ((1 - rho) * SLOTS / S)


def measured(lim: AdaptiveLimiter, rho: float) -> tuple[float, float]:
    """The neighbour's p99 latency, and our share of the capacity it leaves idle, over a minute."""
    m = engine(lim, rho)
    m.run(30)
    ours = share(m, rho, 60)
    return m.foreign_quantile(0.99), ours


def test_a_neighbour_keeps_its_latency_and_the_batch_fills_what_it_leaves() -> None:
    alone, _ = measured(AdaptiveLimiter(max_limit=1, initial=1), 0.3)  # one request of ours at most
    p99, share = measured(AdaptiveLimiter(neighbourly=True), 0.3)
    assert p99 <= 1.10 * alone and share >= 0.8
    greedy, _ = measured(AdaptiveLimiter(), 0.3)  # the ordinary window: some of ours queue in front of theirs
    assert greedy > 1.10 * alone


def test_the_window_comes_back_when_the_neighbour_leaves() -> None:
    lim = AdaptiveLimiter(neighbourly=True)
    m = engine(lim, 0.6)
    m.run(30)
    assert lim.yielding(m.now) and lim.window < 0.6 * SLOTS
    m.set_foreign_rate(0.0)
    m.run(m.now + NEIGHBOUR_GONE + 1)
    assert not lim.yielding(m.now)
    m.measure(2)
    assert m.utilization >= 0.95


def test_a_batch_at_risk_takes_the_neighbours_headroom() -> None:
    """At risk, the window stops yielding: the batch takes what the neighbour leaves idle in full (in a FIFO
    engine an open-loop neighbour's requests are all served, so that is the most there is), not the part that
    keeps the neighbour out of the queue."""
    rho = 0.6
    lim = AdaptiveLimiter(neighbourly=True)
    m = engine(lim, rho)
    m.run(30)
    yielded = share(m, rho, 30)
    assert lim.yielding(m.now)
    lim.urgent = True
    m.run(m.now + 5)
    urgent = share(m, rho, 30)
    assert not lim.yielding(m.now) and urgent >= 0.93 and urgent >= yielded + 0.1


def test_without_other_traffic_the_metrics_change_nothing() -> None:
    lim = AdaptiveLimiter(neighbourly=True, initial=40)
    for _ in range(40):
        lim.on_start()
    lim.on_engine_load(Load(running=32, waiting=8), now=1.0)  # all of it ours: our own queue, the usual rule
    assert not lim.yielding(1.0) and lim.window == 40 and lim.foreign == 0
    lim.on_engine_load(Load(running=32, waiting=12), now=2.0)  # 4 more than ours: someone else is there
    assert lim.yielding(2.0) and lim.foreign == 4 and lim.window == 40 - 12 // 2  # by half of what waits
    lim.on_engine_load(Load(running=64, waiting=0), now=2.5)  # nothing waits, the window is in use: +64/32
    assert lim.window == 40 - 12 // 2 + 2
    for _ in range(10):
        lim.on_done(0.1, now=2.6)  # the window is not in use: a reading with nothing waiting leaves it
    lim.on_engine_load(Load(running=34, waiting=0), now=3.0)
    assert lim.window == 40 - 12 // 2 + 2


def test_without_neighbourly_the_metrics_are_only_shown() -> None:
    lim = AdaptiveLimiter(initial=40)
    for _ in range(40):
        lim.on_start()
    lim.on_engine_load(Load(running=40, waiting=12), now=2.0)
    assert lim.foreign == 12 and not lim.yielding(2.0) and lim.window == 40
