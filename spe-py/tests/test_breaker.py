"""spe.CircuitBreaker: calls, coroutines, the decorator, states, invariants."""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spe


class Boom(Exception):
    pass


def boom() -> None:
    raise Boom("down")


def manual(**kwargs: object) -> tuple[spe.CircuitBreaker, spe.ManualClock]:
    clock = spe.ManualClock()
    settings_: dict[str, object] = {"jitter": 0.0, "open_s": 30.0, "clock": clock}
    settings_.update(kwargs)
    return spe.CircuitBreaker(**settings_), clock  # type: ignore[arg-type]


def fail(breaker: spe.CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call(boom)


# --- call ---------------------------------------------------------------------


def test_call_returns_the_result_and_passes_arguments() -> None:
    breaker = spe.CircuitBreaker()
    assert breaker.call(divmod, 7, 2) == (3, 1)
    assert breaker.call(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    assert breaker.metrics()["window_calls"] == 2


def test_exceptions_propagate_unchanged_and_count() -> None:
    breaker, _ = manual(minimum_calls=5)
    error = Boom("the original")
    def raise_it() -> None:
        raise error
    with pytest.raises(Boom) as info:
        breaker.call(raise_it)
    assert info.value is error
    m = breaker.metrics()
    assert (m["window_calls"], m["window_failures"]) == (1, 1)


def test_failures_open_the_circuit_and_refuse_without_calling() -> None:
    breaker, clock = manual()
    fail(breaker, 2)
    assert breaker.state == "open"
    assert breaker.retry_after_s == pytest.approx(30.0)
    called = []
    with pytest.raises(spe.CircuitOpenError) as info:
        breaker.call(called.append, 1)
    assert called == []
    assert info.value.state == "open"
    assert info.value.retry_after_s == pytest.approx(30.0)
    assert "retry in 30.0 s" in str(info.value)
    clock.advance(10)
    assert breaker.retry_after_s == pytest.approx(20.0)
    assert breaker.metrics()["rejected"] == 1


def test_half_open_probe_closes_or_reopens_with_backoff() -> None:
    breaker, clock = manual(backoff=2.0)
    fail(breaker, 2)
    clock.advance(30)
    fail(breaker)  # the probe fails: open again, twice as long
    assert breaker.state == "open"
    assert breaker.retry_after_s == pytest.approx(60.0)
    assert breaker.metrics()["open_attempt"] == 1
    clock.advance(60)
    assert breaker.call(lambda: "ok") == "ok"  # the probe succeeds
    assert breaker.state == "closed"
    assert breaker.metrics()["open_attempt"] == 0


def test_only_the_configured_probes_go_through() -> None:
    breaker, clock = manual(half_open_probes=1)
    fail(breaker, 2)
    clock.advance(30)
    inside = []

    def probe() -> str:
        inside.append(breaker.state)
        with pytest.raises(spe.CircuitOpenError) as info:
            breaker.call(lambda: None)  # a second call while the probe runs
        inside.append(info.value.state)
        return "done"

    assert breaker.call(probe) == "done"
    assert inside == ["half_open", "half_open"]
    assert breaker.state == "closed"


def test_ignored_exceptions_count_for_nothing() -> None:
    breaker, _ = manual(ignore=(KeyError,))
    for _ in range(5):
        with pytest.raises(KeyError):
            breaker.call({}.__getitem__, "missing")
    m = breaker.metrics()
    assert (breaker.state, m["window_calls"], m["ignored"]) == ("closed", 0, 5)
    assert breaker.ignore == (KeyError,)
    with pytest.raises(TypeError, match="not 'KeyError'"):
        spe.CircuitBreaker(ignore="KeyError")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exception class"):
        spe.CircuitBreaker(ignore=(KeyError, "ValueError"))  # type: ignore[arg-type]


def test_keyboard_interrupt_is_not_counted() -> None:
    breaker, _ = manual()

    def interrupted() -> None:
        raise KeyboardInterrupt

    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            breaker.call(interrupted)
    assert breaker.state == "closed"
    assert breaker.metrics()["window_calls"] == 0


def test_a_late_call_keeps_its_result_but_counts_as_a_timeout() -> None:
    breaker, clock = manual(timeout_s=5.0)

    def slow() -> str:
        clock.advance(6)
        return "late but here"

    assert breaker.call(slow) == "late but here"
    assert breaker.call(slow) == "late but here"
    m = breaker.metrics()
    assert (m["timeouts"], m["window_failures"]) == (2, 2)
    assert breaker.state == "open"


def test_slow_calls_open_the_circuit() -> None:
    breaker, clock = manual(timeout_s=None, slow_call_s=1.0, slow_call_rate=0.5)

    def slow() -> None:
        clock.advance(2)

    breaker.call(slow)
    breaker.call(slow)
    assert breaker.metrics()["window_slow_calls"] == 2
    assert breaker.state == "open"


def test_force_open_disable_reset() -> None:
    breaker, _ = manual()
    breaker.force_open()
    with pytest.raises(spe.CircuitOpenError) as info:
        breaker.call(int)
    assert info.value.state == "forced_open" and info.value.retry_after_s is None
    assert "reset" in str(info.value)
    breaker.disable()
    fail(breaker, 5)
    assert breaker.state == "disabled"
    breaker.reset()
    assert breaker.state == "closed" and breaker.metrics()["window_calls"] == 0


def test_time_window() -> None:
    breaker, clock = manual(window_s=10, minimum_calls=3)
    fail(breaker, 2)
    clock.advance(11)  # the two failures leave the window
    fail(breaker, 1)
    assert breaker.state == "closed"
    assert breaker.metrics()["window_calls"] == 1


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"failure_rate": 1.5}, "failure_rate=1.5 is invalid"),
        ({"failure_rate": 0.0}, "failure_rate=0 is invalid"),
        ({"window": 0}, r"^circuit breaker setting window=0 is invalid: expected 1 to 65535 calls$"),
        ({"open_s": 0.0}, r"^circuit breaker setting open_s=0 is invalid: expected more than 0 "
                          r"seconds and at most max_open_s \(600 s\)$"),
        ({"open_s": 60.0, "max_open_s": 30.0}, r"open_s=60 is invalid: .*max_open_s \(30 s\)"),
        ({"max_open_s": 0.0}, r"open_s=30 is invalid"),
        ({"backoff": 0.5}, r"^circuit breaker setting backoff=0.5 is invalid: expected 1 to 100$"),
        ({"slow_call_s": 0.0}, r"^circuit breaker setting slow_call_s=0 is invalid"),
        ({"window_s": 4000}, r"^circuit breaker setting window_s=4000 is invalid"),
        ({"open_s": -1.0}, "open_s=-1"),
        ({"timeout_s": 0.0}, "timeout_s=0"),
        ({"jitter": 0.9}, "jitter=0.9"),
        ({"half_open_probes": 0}, "half_open_probes=0"),
        ({"window": -1}, "window=-1 is out of range"),
        ({"minimum_calls": -1}, "minimum_calls=-1 is out of range"),
        ({"window_s": -5}, "window_s=-5 is out of range"),
        ({"half_open_probes": 2**40}, "half_open_probes=1099511627776 is out of range"),
        ({"max_open_s": 86401.0}, "max_open_s=86401 is too long: the open wait is at most one day"),
        ({"max_open_s": 1.8e19, "jitter": 0.5}, "max_open_s=18000000000000000000 is too long"),
        ({"open_s": 1e30}, "open_s=1000000000000000000000000000000 seconds is too long"),
        ({"open_s": float("nan")}, "open_s=NaN is not a duration"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(spe.ConfigError, match=pattern) as info:
        spe.CircuitBreaker(**kwargs)  # type: ignore[arg-type]
    # The constructor's names, not the core's.
    for core_name in ("open_wait", "window.size", "backoff_multiplier", "slow_call_duration",
                      "max_open_wait", "ns"):
        assert core_name not in str(info.value).replace("open_s", "")


@pytest.mark.parametrize(
    "name",
    ["timeout_s", "failure_rate", "open_s", "slow_call_s", "slow_call_rate", "backoff",
     "max_open_s", "jitter", "window", "minimum_calls", "half_open_probes"],
)
def test_bools_are_refused_as_numbers(name: str) -> None:
    with pytest.raises(TypeError, match=f"^{name} must be a.*, not bool"):
        spe.CircuitBreaker(**{name: True})  # type: ignore[arg-type]


def test_wrong_types_name_the_argument() -> None:
    with pytest.raises(TypeError, match="^timeout_s must be a number, not str"):
        spe.CircuitBreaker(timeout_s="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^clock must be a spe.ManualClock or None"):
        spe.CircuitBreaker(clock="x")  # type: ignore[arg-type]


def test_a_window_smaller_than_minimum_calls_trips_once_full() -> None:
    breaker = spe.CircuitBreaker(window=5, minimum_calls=10)
    fail(breaker, 4)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"


def test_shared_by_threads() -> None:
    breaker = spe.CircuitBreaker(minimum_calls=1000, window=1000)
    def work() -> None:
        for _ in range(200):
            breaker.call(int, "1")
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.metrics()["window_calls"] == 800


# --- the decorator and coroutines ---------------------------------------------


def test_decorator_on_a_function() -> None:
    breaker, _ = manual()

    @breaker
    def flaky(x: int) -> int:
        """Docs stay."""
        if x < 0:
            raise Boom("negative")
        return x * 2

    assert flaky(4) == 8
    assert flaky.__name__ == "flaky" and flaky.__doc__ == "Docs stay."
    assert flaky.breaker is breaker  # type: ignore[attr-defined]
    with pytest.raises(Boom):
        flaky(-1)
    with pytest.raises(spe.CircuitOpenError):
        flaky(4)


def test_decorator_on_a_coroutine_function() -> None:
    breaker, _ = manual()

    @breaker
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise Boom("negative")
        return x

    async def main() -> list[object]:
        out: list[object] = [await fetch(3)]
        for x in (-1, -2, 5):
            try:
                out.append(await fetch(x))
            except (Boom, spe.CircuitOpenError) as e:
                out.append(type(e).__name__)
        return out

    assert asyncio.run(main()) == [3, "Boom", "CircuitOpenError", "CircuitOpenError"]


def test_acall_timeout_cancels_the_coroutine() -> None:
    breaker = spe.CircuitBreaker(timeout_s=0.05, minimum_calls=1, failure_rate=1.0)
    cancelled = []

    async def hang() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(spe.CallTimeoutError) as info:
        asyncio.run(breaker.acall(hang))
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, spe.UpstreamError)
    assert info.value.timeout_s == 0.05
    # The attributes of every UpstreamError (as WeatherService.fetch_live raises them).
    assert (info.value.status, info.value.fault) == (None, "upstream")
    assert cancelled == [True]
    assert breaker.metrics()["timeouts"] == 1
    assert breaker.state == "open"


def test_every_upstream_error_has_status_and_fault() -> None:
    """Even one built by hand (a test double): None where not applicable."""
    for cls in (spe.UpstreamError, spe.CallTimeoutError):
        e = cls("made by hand")
        assert (e.status, e.fault) == (None, None)


def test_acall_keeps_a_timeout_error_of_the_coroutine_itself() -> None:
    breaker = spe.CircuitBreaker(timeout_s=10.0)

    async def own_timeout() -> None:
        raise TimeoutError("mine")

    with pytest.raises(TimeoutError, match="mine") as info:
        asyncio.run(breaker.acall(own_timeout))
    assert not isinstance(info.value, spe.CallTimeoutError)
    assert breaker.metrics()["timeouts"] == 0


def test_acall_on_an_open_circuit_closes_the_coroutine() -> None:
    breaker, _ = manual()
    fail(breaker, 2)

    async def never() -> None:
        raise AssertionError("must not run")

    coroutine = never()
    with pytest.raises(spe.CircuitOpenError):
        asyncio.run(breaker.acall(coroutine))
    assert coroutine.cr_frame is None  # closed: no "never awaited" warning


def test_cancelled_acall_records_nothing_and_frees_the_probe() -> None:
    breaker, clock = manual()
    fail(breaker, 2)
    clock.advance(30)

    async def main() -> str:
        started = asyncio.Event()

        async def slow_probe() -> None:
            started.set()
            await asyncio.sleep(60)

        task = asyncio.create_task(breaker.acall(slow_probe))
        await started.wait()
        assert breaker.state == "half_open"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await breaker.acall(asyncio.sleep, 0, "next probe")

    assert asyncio.run(main()) == "next probe"
    assert breaker.state == "closed"


# --- the object ---------------------------------------------------------------


def test_repr_config_and_pickle() -> None:
    breaker = spe.CircuitBreaker(timeout_s=2.5, failure_rate=0.25, open_s=12.0, window=20,
                                 ignore=(KeyError,))
    assert repr(breaker) == (
        "CircuitBreaker(state='closed', timeout_s=2.5, failure_rate=0.25, open_s=12.0)"
    )
    fail(breaker, 2)
    for other in (pickle.loads(pickle.dumps(breaker)), copy.copy(breaker)):
        assert type(other) is spe.CircuitBreaker
        assert other.config() == breaker.config()
        assert other.ignore == (KeyError,)
        assert other.state == "closed"  # a fresh breaker
    assert breaker.config()["window"] == 20
    # Every keyword argument of the constructor but the clock, so that it rebuilds one.
    assert breaker.config()["ignore"] == (KeyError,)
    rebuilt = spe.CircuitBreaker(**breaker.config())
    assert rebuilt.config() == breaker.config()
    assert repr(spe.ManualClock()) == "ManualClock(now_s=0.0)"


def test_low_level_call_ends_once() -> None:
    breaker, _ = manual(minimum_calls=10)
    pending = breaker._admit()
    assert repr(pending) == "_Call(pending=True)"
    assert pending.success() is False
    assert repr(pending) == "_Call(pending=False)"
    pending.failure(Boom())  # already ended: ignored
    assert breaker.metrics()["window_calls"] == 1
    assert breaker.metrics()["window_failures"] == 0


# --- invariants ---------------------------------------------------------------

OPERATIONS = st.lists(
    st.one_of(
        st.just(("ok", 0.0)),
        st.just(("fail", 0.0)),
        st.tuples(st.just("slow"), st.floats(min_value=0.0, max_value=10.0)),
        st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=100.0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    operations=OPERATIONS,
    window=st.integers(min_value=1, max_value=8),
    minimum_calls=st.integers(min_value=1, max_value=8),
    failure_rate=st.floats(min_value=0.05, max_value=1.0),
    probes=st.integers(min_value=1, max_value=3),
)
def test_breaker_invariants(
    operations: list[tuple[str, float]],
    window: int,
    minimum_calls: int,
    failure_rate: float,
    probes: int,
) -> None:
    clock = spe.ManualClock()
    breaker = spe.CircuitBreaker(
        timeout_s=5.0, failure_rate=failure_rate, open_s=30.0, window=window,
        minimum_calls=minimum_calls, jitter=0.0, half_open_probes=probes, clock=clock,
        slow_call_s=3.0, slow_call_rate=1.0,
    )
    rejected = 0
    for op, amount in operations:
        if op == "wait":
            clock.advance(amount)
            continue
        state_before = breaker.state
        retry_after = breaker.retry_after_s
        ran = []

        def operation() -> None:
            ran.append(True)
            if op == "slow":
                clock.advance(amount)
            if op == "fail":
                raise Boom()

        try:
            breaker.call(operation)
        except spe.CircuitOpenError as e:
            rejected += 1
            assert not ran  # a refused call never runs
            assert state_before in ("open", "half_open")
            assert e.state in ("open", "half_open")
            if state_before == "open":
                assert retry_after is not None and retry_after > 0
        except Boom:
            assert ran
        else:
            assert ran
        # An open circuit whose wait has not passed refuses; one whose wait
        # has passed lets exactly one call become the probe.
        if state_before == "open" and retry_after == 0:
            assert ran
        m = breaker.metrics()
        assert breaker.state in ("closed", "open", "half_open")
        assert 0 <= m["window_failures"] <= m["window_calls"] <= window
        assert m["window_slow_calls"] <= m["window_calls"]
        assert 0.0 <= m["failure_rate"] <= 1.0
        assert m["rejected"] == rejected
        if breaker.state == "closed" and m["window_calls"] >= minimum_calls:
            assert m["failure_rate"] < failure_rate
        if breaker.state == "open":
            assert 0 <= breaker.retry_after_s <= 30.0 * 2.0 ** m["open_attempt"] + 1e-6
