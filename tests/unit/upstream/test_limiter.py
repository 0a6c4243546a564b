"""The adaptive window's rules, on a virtual clock: driven by hand (no network), or through `EngineModel`, a
discrete-event model of an engine with slots (tests/support/engine_model.py). Nothing here is timed."""

from __future__ import annotations

import random

import pytest
from engine_model import EngineModel

from batchgate.upstream.limiter import AdaptiveLimiter


def model(slots: int, service: float, mode: str = "queue", post: float = 0.002, **kw: float) -> EngineModel:
    return EngineModel(AdaptiveLimiter(), slots, lambda now: service, mode=mode, post=post, **kw)


@pytest.mark.parametrize(("slots", "service"), [(32, 0.25), (256, 0.5), (1024, 2.0)])
def test_against_a_queueing_engine_the_window_converges_to_its_slots_plus_a_margin(slots: int,
                                                                                   service: float) -> None:
    m = model(slots, service)
    m.run(40 * service + 20)
    m.measure(40 * service)
    lim = m.limiter
    assert slots <= lim.limit <= 1.05 * slots + 3  # the window outside of ProbeRTT
    assert m.utilization >= 0.97
    assert m.queue_mean <= 0.25 * slots and m.queue_quantile(0.95) <= 0.25 * slots
    assert lim.base_rtt == pytest.approx(service, rel=0.02) and lim.probes >= 1


def test_the_window_starts_small_and_doubles_per_round_trip() -> None:
    m = model(4096, 1.0)
    assert m.limiter.window == 8
    seen = []
    for t in range(1, 6):
        m.run(t + 0.5)
        seen.append(m.limiter.window)
    assert seen[0] < 20 and seen[-1] >= 8 * 2 ** 4  # one round trip in: still small; then x2 a round trip


def test_429s_step_the_window_down_to_what_the_engine_holds() -> None:
    lim = AdaptiveLimiter(initial=100)
    for _ in range(100):
        lim.on_start()
    for _ in range(20):  # 20 of the 100 were refused: the engine holds about 80
        lim.on_overload(now=1.0)
    assert lim.window == 80 and not lim.slow_start
    assert lim.overloads == 20 and lim.inflight == 80


@pytest.mark.parametrize("slots", [32, 256])
def test_against_an_engine_that_refuses_the_window_stays_at_its_slots(slots: int) -> None:
    m = model(slots, 0.5, mode="reject")
    m.run(60)
    m.measure(30)
    assert slots <= m.limiter.window <= 1.03 * slots + 1  # the ceiling rises 2% a round trip, to probe
    assert m.utilization >= 0.95
    assert m.refused < 0.05 * m.answered  # a few refusals a round trip, where it probes for more room


def test_a_timeout_is_congestion() -> None:
    lim = AdaptiveLimiter(initial=64)
    for _ in range(64):
        lim.on_start()
    lim.on_timeout(now=10.0)
    assert lim.window == 32 and lim.timeouts == 1 and not lim.slow_start
    lim.on_timeout(now=10.0)  # the other timeouts of the same round trip say the same thing
    assert lim.window == 32


def test_timeouts_keep_the_engine_queue_short_enough_for_them() -> None:
    """An engine whose requests take 1 s, and a timeout of 3 s: the startup overshoot queues requests past it;
    the timeouts cut the window, and from then on nothing times out."""
    m = model(8, 1.0, timeout=3.0)
    m.run(60)
    first = m.timed_out
    m.measure(120)
    assert m.timed_out == first and m.utilization >= 0.9


def test_queueing_we_cause_never_becomes_the_engines_latency() -> None:
    """Hold the window far above the engine for minutes: every answer then waits in the engine's queue, yet
    the no-queue latency stays the engine's own (the old rule let old minimums expire into queued latency)."""
    m = model(64, 0.5)
    m.run(30)
    lim = m.limiter
    lim.limit = lim.ceiling = 4 * 64.0
    m.limiter.max_limit = 256  # pinned at 4x the slots: it can't shrink
    for t in range(31, 180):
        lim.limit = 256.0
        m.run(t)
    assert lim.base_rtt == pytest.approx(0.5, rel=0.05) and lim.probes >= 5
    assert lim.engine == pytest.approx(64, rel=0.1)  # rate x no-queue latency: the slots, not what we queue


def test_probe_rtt_learns_a_slower_engine_and_a_faster_one() -> None:
    speed = [1.0]
    m = EngineModel(AdaptiveLimiter(), 32, lambda now: 0.25 * speed[0], post=0.002)
    m.run(40)
    speed[0] = 2.0  # longer outputs: every request takes twice as long, whatever the window
    m.run(160)
    lim = m.limiter
    assert lim.base_rtt == pytest.approx(0.5, rel=0.05)
    m.measure(30)
    assert 32 <= lim.window <= 37 and m.utilization >= 0.95
    speed[0] = 0.5  # and then four times faster
    m.run(m.now + 60)
    assert lim.base_rtt == pytest.approx(0.125, rel=0.05)
    m.measure(30)
    assert 32 <= lim.window <= 37 and m.queue_quantile(0.95) <= 8


def test_requests_of_different_lengths() -> None:
    rng = random.Random(7)
    m = EngineModel(AdaptiveLimiter(), 32, lambda now: 0.25 * rng.uniform(0.5, 1.5), post=0.005)
    m.run(40)
    m.measure(60)
    assert m.utilization >= 0.95 and m.queue_mean <= 0.25 * 32


def test_answers_being_recorded_do_not_count_against_the_engine() -> None:
    lim = AdaptiveLimiter(initial=8)
    for _ in range(8):
        lim.on_start()
    lim.on_answer(now=1.0)
    assert lim.capacity == lim.window + 1  # its slot is held, the engine's place is free
    lim.on_done(1.0, now=1.05, held=1.05)
    assert lim.capacity == lim.window and lim.inflight == 7


def test_window_never_exceeds_its_cap_or_drops_below_one() -> None:
    m = EngineModel(AdaptiveLimiter(max_limit=8), 64, lambda now: 0.1)
    m.run(20)
    assert m.limiter.capacity == 8
    lim = AdaptiveLimiter()
    for i in range(50):
        lim.on_start()
        lim.on_overload(now=100.0 + i)
    assert lim.window >= 1


def test_startup_overshoots_by_one_window_at_most_so_nothing_times_out() -> None:
    """8 slots (llama.cpp's server), requests of 1.05-1.95 s, a timeout of 3x the slowest: startup doubles
    the window only up to about twice what the engine delivers a round trip (answers being recorded come on
    top), so nothing queues long enough to time out."""
    rng = random.Random(5)
    m = EngineModel(AdaptiveLimiter(), 8, lambda now: 1.5 * rng.uniform(0.7, 1.3), post=0.005, timeout=3 * 1.95)
    peak = 0
    for tenth in range(1, 600):
        m.run(tenth / 10)
        peak = max(peak, m.limiter.inflight)
    assert peak <= 3 * 8 + 2 and m.timed_out == 0
    m.measure(60)
    assert m.utilization >= 0.95 and m.timed_out == 0


def test_a_fast_upstream_behind_a_busy_client_keeps_a_deep_enough_window() -> None:
    """An upstream that answers in 1 ms, behind a client that can turn 5,000 requests a second (each request in
    flight adds 0.2 ms of the client's own time to every answer, Little's law of a busy event loop). Measured
    naively the engine runs ~5 at once and a window of 5 halves the throughput; the window keeps 20 ms of the
    delivery rate in flight (QUEUE_TOLERANCE), which a queue of 1-ms requests costs nobody."""
    lim = AdaptiveLimiter()
    m = EngineModel(lim, 100_000, lambda now: 0.001 + 0.0002 * lim.inflight, post=0.0)
    m.run(8)
    m.measure(4)
    rate = m.answered / m.now
    assert lim.window >= 0.02 * lim.rate
    assert lim.rate >= 0.8 * 5000 and rate >= 0.7 * 5000


@pytest.mark.parametrize("gap", [0.3, 1.2, 5.0])
def test_a_pause_in_the_work_is_not_a_stalled_engine(gap: float) -> None:
    """One batch runs dry and the next starts `gap` seconds later: the slices without answers were ours, not the
    engine's, so the window keeps what it learned instead of counting them as rounds of no deliveries."""
    m = model(64, 0.1)
    m.run(20)
    before = m.limiter.window
    m.idle = True
    m.run(20 + gap)
    m.idle = False
    m.run(20 + gap + 0.25)  # the first answers of the new work
    assert m.limiter.window >= 0.9 * before >= 0.9 * 64
    m.measure(3)
    assert m.utilization >= 0.95


def test_a_stalled_engine_counts_its_silent_rounds() -> None:
    """The engine stops answering for 0.6 s with our requests in it: those slices are rounds of no deliveries, and
    the delivery rate falls (the twin of the test above: there the silence was ours)."""
    def service(now: float) -> float:
        return 20.6 - now + 0.1 if 19.9 <= now < 20.6 else 0.1

    m = EngineModel(AdaptiveLimiter(), 64, service, post=0.002)
    m.run(19.9)
    before = m.limiter.rate
    m.run(20.72)  # the first answers after the stall
    assert m.limiter.rate < 0.5 * before


def test_requests_waiting_for_our_own_connections_are_not_the_engines_limit() -> None:
    """Our client opens connections at a pace (16 in the first second, 32 in the next, then all it needs): what
    waits for one is not at the engine, so the window is not full, startup does not end on the flat rate, and
    once the connections are there the window fills the engine's 64 slots within a second or two."""
    def connections(now: float) -> float:
        return 16 if now < 1 else 32 if now < 2 else float("inf")

    m = EngineModel(AdaptiveLimiter(), 64, lambda now: 0.1, post=0.002, connections=connections)
    m.run(3.5)
    assert m.limiter.window >= 64
    m.measure(3)
    assert m.utilization >= 0.95
