"""The adaptive window, driven by hand (no clock, no network)."""

from batchgate.upstream.limiter import AdaptiveLimiter


def run_round(lim: AdaptiveLimiter, now: float, rtt: float) -> None:
    """One round trip of a closed loop that keeps the window full: every answer is replaced at once."""
    while lim.inflight < lim.capacity:
        lim.on_start()
    for _ in range(lim.inflight):
        lim.on_done(rtt, now)
        while lim.inflight < lim.capacity:
            lim.on_start()


def test_slow_start_grows_while_latency_holds_then_queueing_cuts_it() -> None:
    lim = AdaptiveLimiter(max_limit=4096, initial=16)
    for i in range(2):
        run_round(lim, float(i), 0.5)
    assert lim.capacity >= 16 * 5 * 5  # fivefold per round trip
    # latency triples: requests are queueing inside the engine; the window shrinks and slow start ends
    before = lim.capacity
    run_round(lim, 2.0, 1.5)
    assert lim.capacity < before and not lim.slow_start


def test_an_engine_that_got_slower_is_not_starved() -> None:
    lim = AdaptiveLimiter(max_limit=4096, initial=256)
    for i in range(3):
        run_round(lim, float(i), 0.5)
    # from now on every request takes 4x as long, whatever the window: not queueing, a slower engine
    for i in range(3, 60):
        run_round(lim, i * 2.0, 2.0)
    assert lim.capacity >= 64


def test_refusals_step_the_window_down_to_what_fits() -> None:
    lim = AdaptiveLimiter(max_limit=4096, initial=100)
    for _ in range(100):
        lim.on_start()
    for _ in range(20):  # 20 of the 100 were refused: the engine holds about 80
        lim.on_overload(now=1.0)
    assert 75 <= lim.capacity <= 80
    assert lim.overloads == 20 and lim.inflight == 80


def test_window_never_exceeds_its_cap_or_drops_below_one() -> None:
    lim = AdaptiveLimiter(max_limit=8, initial=4)
    for i in range(10):
        run_round(lim, float(i), 0.1)
    assert lim.capacity == 8
    for i in range(50):
        lim.on_start()
        lim.on_overload(now=100.0 + i)
    assert lim.capacity >= 1


def test_min_rtt_expires_after_30_seconds() -> None:
    lim = AdaptiveLimiter()
    lim.on_start()
    lim.on_done(0.1, now=0.0)
    assert lim.min_rtt(1.0) == 0.1
    lim.on_start()
    lim.on_done(0.1, now=40.0)
    assert lim.min_rtt(40.0) > 0
