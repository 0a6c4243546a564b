"""Adaptive concurrency per upstream: how many requests may be in flight right now.

The window should be what the engine runs at once plus a small margin: fewer leaves slots idle, more only
queues inside the engine, where every later request (a newer batch, an interactive user) waits behind ours,
latency creeps towards the request timeout, and a worker's crash re-sends more. No tuning per upstream, so the
limiter measures the engine's concurrency the way BBR measures a network path:

    engine concurrency = delivery rate (answers per second) x no-queue latency (Little's law)
    window = gain (1.05) x engine concurrency + margin (2)

  where the no-queue latency counts as at least 20 ms (QUEUE_TOLERANCE): an engine that answers in 1 ms
  (embeddings on a GPU, a cache, a mock) is measured through our own event loop, whose delay grows with what is
  in flight, so each ProbeRTT found a lower latency and the window shrank to ~5, halving the throughput of a
  client that needed 60 in flight. 20 ms of queueing costs the engine's other users nothing they would notice.

- **Deliveries.** Answers are counted as they arrive, on a grid of rounds one no-queue latency long (bursts of
  answers fall into one round each), over the last 8 rounds in which the window was full: a batch running dry
  says how much work there was, not what the engine can do. The window counts requests at the engine: an
  answer being recorded still holds its slot (`capacity` = window + those), but not the engine's; nor does a
  request our own client holds before sending it (`on_queued`: a paced connection), whose wait is ours, not the
  engine's (the pool's first second, 16 connections, otherwise reads as an engine of 16). Slices without
  an answer count as rounds of none only while our requests were at the engine all along (a stuck engine): when
  one batch runs dry and the next starts a second later, the silence was ours, and counting it had emptied the
  rate and cut the window from 69 to 12 at 64 slots, which then took 9 s to grow back.
- **Startup.** The window starts at `initial` (8) and grows by one per answer while it is full (it doubles
  each round trip), but never past twice the answers of the last round trip + 2 (a queue shows itself a round
  trip late, in late answers: this bounds the overshoot to about one window, so that nothing queued in it
  waits for two), until the rate stops growing by a quarter for three rounds, latency doubles (requests queue),
  a 429 or a timeout. Then the formula sets it; the overshoot drains within a round trip.
- **Steady state.** Against a queueing engine the rate is its capacity and the window settles at 1.05x its
  slots + 2: at most 5% of them plus two wait inside it. Against an engine with room the rate follows the
  window, which grows by 5% + 2 a round.
- **The no-queue latency is never measured on our own queue.** Once the window fills the engine, every answer
  includes the wait in its queue. The first estimate is the mean latency of the first window (sent into an
  idle engine; a mean, not a minimum: requests differ in length, and the window is made for all of them).
  Then every 10 s (ProbeRTT) the window drops to 0.8x the engine's concurrency until what is in flight fits,
  a few requests are sent into an engine with free slots, and the window is restored at once: the mean latency
  of exactly those requests is the new measure. Little's law tells whether they queued after all (then rate x
  their latency is at most what was in flight during the probe): a clean probe is believed, so an engine that
  got slower (longer outputs, a busier GPU) is learned; one that may have queued only lowers the estimate, and
  the next probe drains deeper and comes after 2 s. Three full rounds in a row answered faster than the
  estimate lower it too. A probe costs a fraction of a round trip at 80%.
- **Overload.** A 429 (or 503 with Retry-After) says "one too many": it sets a ceiling one below what was at
  the engine when it came (so a burst of k refusals steps the window down by k). A timeout is congestion too
  (the request waited longer than the timeout allows): the ceiling halves what was at the engine, once per
  round trip, and only for requests sent after the last cut (one sent before tells of a window already cut).
  The ceiling rises by 2% (at least one) per round without either, and stops mattering once it is twice the
  window.

- **A neighbour (issue 16).** With `neighbourly` on and the engine's metrics polled (`on_engine_load`), any traffic
  at the engine beyond our own requests is someone else's (an interactive user). While there is some, the window
  follows the engine's readings alone: a reading with requests waiting drops it by half of what waits, below what we
  have at the engine; a reading with nothing waiting, while the window is in use, raises it by 1/32 of the most the
  engine was seen running (two requests at 64 slots; one per eight readings at 4: a fixed step of two overfilled a
  4-slot llama.cpp). In a FIFO engine the neighbour's requests wait behind whatever of ours is queued, so ours stay
  out of the queue; what the neighbour leaves idle we fill. Half, not all, of what waits: the neighbour's own bursts
  wait too, and cutting by all of it left 0.67-0.77 of the idle capacity at a 60% neighbour. The rate x no-queue
  latency target above does not bound the window while it yields: with requests of varied length the no-queue
  latency is read from the faster rounds (5-10% under the mean), so that target sat below the window and held it at
  0.5-0.7 of the idle capacity, differently from run to run. Two seconds (or eight no-queue latencies, if longer: at
  1 s a request, a user's pause of 2 s is common, and each one sent the window back to a startup that filled a
  4-slot llama.cpp's queue) after the metrics last showed other traffic, the ordinary rule above takes over again,
  from startup (the window doubles per round trip). A batch at risk of its deadline (`urgent`, set by the planner
  through the gate) suspends the yielding the same way. Without the engine's metrics the window cannot tell a
  neighbour's queueing from a long request: the rounds' latencies vary by 5% with the lengths of the requests alone,
  and every rule driven by them (late answers, Vegas' expected window) collapsed the window to one in the model with
  requests of 0.5-1.5x the mean.

Why not the earlier latency-gradient rule (cut when smoothed latency doubled against a 30 s minimum, else grow
1%, starting at 512 and x5 per round trip): after a cut it took its own queueing latency as the engine's new
normal, old minimums expired into queued latency, timeouts taught it nothing, and it settled at 4-27x the
engine's slots.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol


class EngineLoad(Protocol):
    """What an engine's metrics say about all its traffic (upstream/engine_load.py reads them)."""

    @property
    def running(self) -> float: ...
    @property
    def waiting(self) -> float: ...

RATE_ROUNDS = 8  # the delivery rate is taken over this many rounds
ROUND_MIN = 0.05  # seconds: shortest round over which a delivery rate is taken
PROBE_FACTOR = 0.8  # ProbeRTT's window, as a fraction of the engine's estimated concurrency
CEILING_GROWTH = 0.02  # the overload ceiling rises this fraction (at least one request) per quiet round
NEIGHBOUR_GONE = 2.0  # seconds without other traffic at the engine before the window is ours again
NEIGHBOUR_GONE_RTTS = 8.0  # or this many no-queue latencies, if longer: a slow engine's user pauses longer
NEIGHBOUR_STEP = 1 / 32  # of the most the engine was seen running: what the window grows per engine reading
# while it yields and nothing waits there (two requests at 64 slots, one per eight readings at 4)
NEIGHBOUR_CUT = 0.5  # of the requests waiting in the engine: what a reading that shows some takes off the window
QUEUE_TOLERANCE = 0.02  # seconds: the window is at least this much of the delivery rate (see _target)


@dataclass
class AdaptiveLimiter:
    max_limit: int = 4096
    initial: int = 8
    min_limit: int = 1
    gain: float = 1.05  # window = gain x engine concurrency + margin
    margin: float = 2.0
    probe_interval: float = 10.0  # seconds between ProbeRTTs
    neighbourly: bool = False  # yield to other traffic the engine's metrics show (see `on_engine_load`)
    urgent: bool = False  # a batch at risk of its deadline waits: don't yield (set by the gate's owner)
    foreign: float = field(default=0.0, init=False)  # other traffic at the engine, last we heard (requests)
    limit: float = field(init=False)
    inflight: int = field(default=0, init=False)  # admitted and not yet released
    answered: int = field(default=0, init=False)  # of those, answered and being recorded: not at the engine
    queued: int = field(default=0, init=False)  # of those, held by our own client (a paced connection): not yet sent
    slow_start: bool = field(default=True, init=False)  # the startup phase
    base_rtt: float = field(default=0.0, init=False)  # no-queue latency of the engine, seconds (0: unknown)
    rate: float = field(default=0.0, init=False)  # answers per second while the window was full
    ceiling: float = field(default=math.inf, init=False)  # from 429s and timeouts
    overloads: int = field(default=0, init=False)
    timeouts: int = field(default=0, init=False)
    probes: int = field(default=0, init=False)
    _round_start: float = field(default=0.0, init=False)
    _round_n: int = field(default=0, init=False)
    _round_full: int = field(default=0, init=False)
    _rtt_n: int = field(default=0, init=False)  # latencies of the answers released this round
    _rtt_sum: float = field(default=0.0, init=False)
    _round_signal: bool = field(default=False, init=False)  # a 429 or timeout came in this round
    _round_probed: bool = field(default=False, init=False)  # a ProbeRTT ran during this round
    _startup_rate: float = field(default=0.0, init=False)
    _recent: deque[float] = field(default_factory=deque, init=False)  # in startup: answers of the last round trip
    _quiet: list[float] = field(default_factory=list, init=False)  # mean latencies of full rounds below base
    _flat: int = field(default=0, init=False)  # startup slices in a row whose rate did not grow by a quarter
    _first_answer: float = field(default=0.0, init=False)
    _first_sent: int = field(default=0, init=False)
    _first_n: int = field(default=0, init=False)
    _first_sum: float = field(default=0.0, init=False)
    _rounds: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RATE_ROUNDS), init=False)
    _last_cut: float = field(default=-math.inf, init=False)
    _foreign_seen: float = field(default=-math.inf, init=False)  # when the engine last showed other traffic
    _empty_at: float = field(default=-math.inf, init=False)  # when the engine last had none of our requests
    _running_max: float = field(default=0.0, init=False)  # the most requests the engine's metrics showed running
    _yielded: bool = field(default=False, init=False)  # yielding at the end of the last round
    _probe_at: float = field(default=math.inf, init=False)
    _probe: str = field(default="", init=False)  # "", "drain", "hold" or "measure"
    _probe_limit: float = field(default=0.0, init=False)
    _probe_factor: float = field(default=PROBE_FACTOR, init=False)
    _probe_started: float = field(default=0.0, init=False)
    _clean_from: float = field(default=0.0, init=False)
    _clean_to: float = field(default=0.0, init=False)
    _clean_sent: int = field(default=0, init=False)
    _clean_n: int = field(default=0, init=False)
    _clean_sum: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.limit = float(max(self.min_limit, min(self.initial, self.max_limit)))

    # -- what the gate reads ----------------------------------------------------------------------------
    @property
    def window(self) -> int:
        """Requests allowed at the engine now."""
        if self._probe in ("drain", "hold"):
            return max(self.min_limit, int(self._probe_limit))
        return max(self.min_limit, int(min(self.limit, self.ceiling, self.max_limit)))

    @property
    def capacity(self) -> int:
        """Requests allowed in flight now: the window, plus the answers being recorded (they hold their slots, so
        that a crash loses at most what is in flight, but they are no longer at the engine); never past
        max_limit."""
        return min(self.window + self.answered, self.max_limit)

    @property
    def at_engine(self) -> int:
        """Our requests at the engine now: admitted, sent, and not answered."""
        return self.inflight - self.answered - self.queued

    @property
    def engine(self) -> float:
        """The engine's estimated concurrency: delivery rate x no-queue latency."""
        return self.rate * self.base_rtt

    # -- what the gate reports --------------------------------------------------------------------------
    def on_start(self) -> None:
        self.inflight += 1
        if self._first_answer == 0.0:
            self._first_sent += 1
        if self._probe == "hold":
            self._clean_sent += 1  # sent into an engine with free slots: its latency is the engine's own

    def on_queued(self) -> None:
        """An admitted request waits in our own client before it is sent (for a connection): not at the engine,
        so a window that it fills is not full, and its wait is not the engine's latency (the gate measures that
        from `on_sent`)."""
        self.queued += 1

    def on_sent(self) -> None:
        """A request that waited (`on_queued`) was sent, or left without being sent."""
        self.queued = max(0, self.queued - 1)

    def on_answer(self, now: float | None = None) -> None:
        """An admitted request got its answer: a delivery, counted now. Its slot is held until `on_done` (while
        the answer is recorded), but it is no longer at the engine."""
        now = time.monotonic() if now is None else now
        in_use = self.at_engine  # at the engine when it answered, itself included
        self.answered += 1
        if in_use <= 1:
            self._empty_at = now
        if self._first_answer == 0.0:
            self._first_answer = self._round_start = now
        full = in_use >= 0.9 * self.window
        if self.slow_start and full:
            # Doubling, but never past twice what the engine delivers in a round: in a queueing engine the first
            # sign of the queue (late answers) comes a round trip late, and a request queued behind three or
            # four windows may time out. Twice the deliveries bounds the overshoot to one window.
            recent = self._recent
            recent.append(now)
            while len(recent) > 1 and recent[0] <= now - 1.1 * self.base_rtt:
                recent.popleft()
            cap = max(float(self.initial), 2.0 * len(recent) + self.margin) if self.base_rtt else math.inf
            self.limit = min(float(self.max_limit), self.limit + 1, max(self.limit, cap))
        # Rounds are slices of one no-queue latency on a fixed grid: answers come in bursts, and a grid of the
        # engine's own period counts each burst once.
        length = max(self.base_rtt, ROUND_MIN)
        if self.base_rtt > 0 and now >= self._round_start + length:
            # Held all along: the engine had some of our requests from the last answer's slice to this one.
            # (A batch that ran dry, and the next one's first requests answered: idle slices, not a stall.)
            busy = self._empty_at < self._round_start
            self._end_round(length, now)
            silent = int((now - self._round_start) // length)
            if silent:  # slices without an answer: no deliveries, if the window was full all along
                if full and busy and not self.slow_start and not self._probe and silent < 2 * RATE_ROUNDS:
                    self._rounds.extend([(0.0, length)] * silent)
                    self.rate = self._rounds_rate()
                self._round_start += silent * length
        self._round_n += 1
        self._round_full += full
        self._probe_step(now)

    def on_done(self, rtt: float, now: float | None = None, held: float | None = None) -> None:
        """A request that got an ordinary answer (success or a non-overload error; `on_answer` was called) is
        released: the answer came `rtt` seconds after it was sent, and it held its slot `held` seconds (until
        its result was recorded; default: `rtt`)."""
        now = time.monotonic() if now is None else now
        held = rtt if held is None else max(held, rtt)
        self.answered = max(0, self.answered - 1)
        self._release(now)
        started = now - held
        if started < self._first_answer and self._first_n < self._first_sent:
            # The first window went into an idle engine: the mean latency of all of it (a mean, not a minimum:
            # requests differ in length, and the window is made for all of them) is the first no-queue latency.
            self._first_n += 1
            self._first_sum += rtt
            self.base_rtt = self._first_sum / self._first_n
        if self._probe == "measure" and self._clean_from <= started <= self._clean_to:
            self._clean_n += 1
            self._clean_sum += rtt
        self._rtt_n += 1
        self._rtt_sum += rtt
        if self.slow_start and self._rtt_n >= 8 and self._rtt_sum > 2 * self.base_rtt * self._rtt_n:
            self._leave_startup(now)  # requests started queueing: don't wait for the round to end
        self._probe_step(now)

    def on_overload(self, now: float | None = None) -> None:
        """The upstream refused a request because it is full (429, or 503 with Retry-After)."""
        now = time.monotonic() if now is None else now
        in_use = self.at_engine
        self._release(now)
        self.overloads += 1
        self._round_signal = True
        # In startup, what was at the engine is the first measure of it; then each refusal steps the window down
        # by one (what we count as at the engine includes answers still on their way, and refusals too).
        fits = in_use - 1.0 if self.slow_start else min(self.ceiling, float(self.window)) - 1.0
        self._congested(max(float(self.min_limit), fits), now)
        self._probe_step(now)

    def on_timeout(self, now: float | None = None, held: float | None = None) -> None:
        """A request got no answer within the request timeout (`held` seconds after it was sent): it waited too
        long, the engine is congested. Once per round trip, and only for a request sent after the window was
        last cut: one sent before says what the window was then, and that was dealt with."""
        now = time.monotonic() if now is None else now
        in_use = self.at_engine
        self._release(now)
        self.timeouts += 1
        self._round_signal = True
        sent_after_cut = held is None or now - held >= self._last_cut
        if sent_after_cut and now - self._last_cut >= max(self.base_rtt, ROUND_MIN):
            self._congested(max(float(self.min_limit), 0.5 * in_use), now)
        self._probe_step(now)

    def on_abandoned(self, now: float | None = None) -> None:
        """No answer for a reason that says nothing about the engine (dropped connection, cancelled)."""
        self._release(time.monotonic() if now is None else now)

    def _release(self, now: float) -> None:
        self.inflight -= 1
        if self.at_engine <= 0:
            self._empty_at = now

    # -- the rules ----------------------------------------------------------------------------------------
    def _congested(self, ceiling: float, now: float) -> None:
        self._last_cut = now
        self.ceiling = min(self.ceiling, ceiling)
        self.limit = min(self.limit, self.ceiling)
        if self.slow_start:
            # In startup the rate lags a round behind the window; what was in flight is the better measure.
            self.rate = max(self.rate, self.ceiling / max(self.base_rtt, ROUND_MIN))
            self._leave_startup(now)

    def _leave_startup(self, now: float) -> None:
        self.slow_start = False
        self._recent.clear()
        self._last_cut = now  # the window comes down from its overshoot now
        # The best startup round is the engine's rate so far; the rates of a growing window say no more.
        self.rate = max(self.rate, self._startup_rate)
        self._rounds.clear()
        self._rounds.append((self.rate * max(self.base_rtt, ROUND_MIN), max(self.base_rtt, ROUND_MIN)))
        # The first window's latency included opening its connections: probe soon after the overshoot drained.
        self._probe_at = self._round_start + min(self.probe_interval, 4 * self.base_rtt)

    def _target(self) -> float:
        """gain x engine concurrency + margin."""
        return self.gain * self.rate * max(self.base_rtt, QUEUE_TOLERANCE) + self.margin

    def _end_round(self, elapsed: float, now: float) -> None:
        n = self._round_n
        sample = n / elapsed
        mean_rtt = self._rtt_sum / self._rtt_n if self._rtt_n else 0.0
        # Not full: the rate says how much work there was. A round of ProbeRTT: how much it held back.
        window_limited = n > 0 and self._round_full * 2 >= n and not self._round_probed
        signal = self._round_signal
        self._round_start += elapsed
        self._round_n, self._round_full, self._rtt_n, self._rtt_sum = 0, 0, 0, 0.0
        self._round_signal = False
        self._round_probed = self._probe != ""
        yielding = self.yielding(now)
        if self._yielded and not yielding:
            # The neighbour left (or a batch is at risk): take the engine back as at the start, doubling per round
            # trip, not 5% a round from the rate of the yielded window.
            self.slow_start, self._flat, self._startup_rate = True, 0, self.rate
        self._yielded = yielding
        if window_limited or sample > self.rate:
            # Over the last 8 rounds: answers come in bursts, and a stall of our own client moves some of one
            # round's answers into the next.
            self._rounds.append((n, elapsed))
            self.rate = sample if self.slow_start else self._rounds_rate()
        if self.slow_start:
            # Full when the rate stops growing by a quarter for three rounds in a row, or latency doubles (requests
            # queue). Not sooner: a stall of our own client looks like either for a round, and the cap above
            # already bounds the overshoot.
            if window_limited:
                self._flat = 0 if sample >= 1.25 * self._startup_rate else self._flat + 1
                self._startup_rate = max(self._startup_rate, sample)
            if self._flat < 3 and mean_rtt <= 2 * self.base_rtt:
                return
            self._leave_startup(now)
        if not signal and self.ceiling < math.inf:
            self.ceiling += max(1.0, CEILING_GROWTH * self.ceiling)
        target = self._target()
        if window_limited and 0 < mean_rtt < self.base_rtt:
            # Answers faster than the no-queue latency, three full rounds in a row: it is too high (the engine
            # got faster; or the probe was slowed by our own client). The slowest of the three is the new one.
            self._quiet.append(mean_rtt)
            if len(self._quiet) == 3:
                self.base_rtt = max(self._quiet)
                self._quiet.clear()
                target = self._target()
        else:
            self._quiet.clear()
        if self.yielding(now):
            # The engine's readings move the window (`on_engine_load`), not the rate: see the module docstring.
            target = self.limit
        if self.ceiling > 2 * target:
            self.ceiling = math.inf
        self.limit = max(float(self.min_limit), min(target, self.ceiling, float(self.max_limit)))

    def yielding(self, now: float | None = None) -> bool:
        """Whether the window is giving way to other traffic now."""
        now = time.monotonic() if now is None else now
        gone = max(NEIGHBOUR_GONE, NEIGHBOUR_GONE_RTTS * self.base_rtt)
        return self.neighbourly and not self.urgent and now - self._foreign_seen <= gone

    def on_engine_load(self, load: EngineLoad | None, now: float | None = None) -> None:
        """The engine's own figures (its /metrics, polled): requests running and waiting, all traffic. Whatever
        is there beyond our own requests is other traffic; while there is some, the window drops below what we
        have at the engine when requests wait there, and grows while nothing does and the window is in use."""
        if load is None:
            return
        now = time.monotonic() if now is None else now
        ours = self.at_engine
        self.foreign = max(0.0, load.running + load.waiting - ours)
        self._running_max = max(self._running_max, load.running)
        if self.foreign >= 1:
            self._foreign_seen = now
            if self.yielding(now):
                if load.waiting > 0:
                    self.limit = max(float(self.min_limit), min(self.limit, ours) - NEIGHBOUR_CUT * load.waiting)
                elif ours >= self.limit - 1:
                    step = NEIGHBOUR_STEP * self._running_max
                    self.limit = min(self.limit + step, self.ceiling, float(self.max_limit))

    def _rounds_rate(self) -> float:
        return sum(r[0] for r in self._rounds) / sum(r[1] for r in self._rounds)

    def _probe_step(self, now: float) -> None:
        """ProbeRTT: drain to 0.8x the engine's concurrency, send a few requests into free slots, measure them."""
        if self._probe == "":
            if now >= self._probe_at and self.engine > 0:
                self.probes += 1
                self._probe, self._probe_started = "drain", now
                self._round_probed = True
                self._probe_limit = max(1.0, self._probe_factor * self.engine)
                self._clean_sent = self._clean_n = 0
                self._clean_sum = 0.0
        if self._probe == "drain":
            if self.inflight - self.answered <= self._probe_limit:
                self._probe, self._clean_from = "hold", now
            elif now - self._probe_started > 4 * max(self.base_rtt, ROUND_MIN):
                self._finish_probe(now, None)  # answers stopped coming (nothing to send, or a stuck engine)
        elif self._probe == "hold":
            # A few requests sent into free slots are enough; don't idle the engine longer. (The hold ends at an
            # answer, never at a start, so the permits of the requests it admitted are dated before its end.)
            enough = self._clean_sent >= max(8.0, 0.1 * self._probe_limit) and now > self._clean_from
            if enough or now - self._clean_from > self.base_rtt:
                self._probe, self._clean_to = "measure", now
        elif self._probe == "measure":
            if self._clean_n >= self._clean_sent or now - self._clean_to > 4 * max(self.base_rtt, ROUND_MIN):
                self._finish_probe(now, self._clean_sum / self._clean_n if self._clean_n else None)

    def _finish_probe(self, now: float, measured: float | None) -> None:
        self._probe = ""
        moved = measured is not None and abs(measured - self.base_rtt) > 0.1 * self.base_rtt
        if measured is not None:
            # Was the probe clean? Had our requests queued during the hold, Little's law would make rate x their
            # latency at most what was in flight then (the probe's window); clearly more means they did not.
            clean = self.rate * measured > 1.1 * self._probe_limit
            # A clean probe is believed, unless it is within a quarter of the estimate (then it is averaged with
            # it: a probe is a few samples). One that may have queued is believed when lower (less queueing than
            # we thought), half-way when higher; and the next probe drains deeper.
            near = abs(measured - self.base_rtt) <= 0.25 * self.base_rtt
            self._probe_factor = PROBE_FACTOR if clean or near else PROBE_FACTOR * PROBE_FACTOR
            if near:
                self.base_rtt = 0.5 * (self.base_rtt + measured)
            elif clean or measured < self.base_rtt:
                self.base_rtt = measured
            else:
                self.base_rtt = 0.5 * (self.base_rtt + measured)
        self._probe_at = now + (max(2.0, 4 * self.base_rtt) if moved else self.probe_interval)
