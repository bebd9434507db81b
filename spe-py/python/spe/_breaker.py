"""The circuit breaker: the compiled core plus calls, coroutines and the decorator."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from spe import _spe

__all__ = ["CircuitBreaker"]

P = ParamSpec("P")
T = TypeVar("T")


class CircuitBreaker(_spe.CircuitBreaker):
    """Stop calling a failing dependency for a while, then probe it.

    ``closed``: calls go through and their outcomes fill a sliding window
    (the last ``window`` calls, or the last ``window_s`` seconds). Once it
    holds at least ``minimum_calls`` calls (or ``window`` calls, if fewer)
    and the failure rate reaches ``failure_rate`` (or the share of calls
    slower than ``slow_call_s`` reaches ``slow_call_rate``), the circuit
    ``open``\\ s: calls are refused at once with
    :class:`spe.CircuitOpenError` (``retry_after_s`` says for how long)
    instead of waiting on a dead dependency. After ``open_s`` seconds (times
    ``backoff`` per failed probe, with ``jitter``, up to ``max_open_s``, at
    most a day), ``half_open``: ``half_open_probes`` calls go through as
    probes; their success closes the circuit, a failure reopens it.

    Every exception a call raises counts as a failure and propagates
    unchanged, except those whose type is in ``ignore``, which count for
    nothing (like HTTP 4xx: the caller's fault, not the dependency's).

    ``timeout_s`` (``None``: no timeout) bounds each call. :meth:`acall`
    cancels a coroutine at the timeout and raises
    :class:`spe.CallTimeoutError`. :meth:`call` runs a plain function in the
    calling thread and cannot interrupt it: a call that returns after the
    timeout keeps its result but counts as a failure, so a dependency that
    hangs still opens the circuit.

    ``clock``: a :class:`spe.ManualClock` for tests (time moves only when
    told to). State is shared by every thread using the breaker; a pickled
    breaker comes back closed, with the same settings.

    >>> import spe
    >>> breaker = spe.CircuitBreaker(timeout_s=5.0, failure_rate=0.5, open_s=30.0)
    >>> breaker.call(int, "42")
    42
    >>> def broken():
    ...     raise ConnectionError("down")
    >>> try:
    ...     breaker.call(broken)   # 1 failure in 2 calls: the rate reaches 0.5
    ... except ConnectionError:
    ...     pass
    >>> breaker.state
    'open'
    >>> try:
    ...     breaker.call(int, "1")
    ... except spe.CircuitOpenError as e:
    ...     print(e.state, 27 <= e.retry_after_s <= 33)
    open True

    As a decorator (plain functions and coroutine functions):

    >>> guarded = spe.CircuitBreaker(open_s=10.0)
    >>> @guarded
    ... def double(x):
    ...     return 2 * x
    >>> double(21), guarded.metrics()["window_calls"]
    (42, 1)
    """

    __slots__ = ()

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` through the breaker and return its result.

        Raises :class:`spe.CircuitOpenError` without calling ``fn`` when the
        circuit refuses the call; otherwise whatever ``fn`` raises,
        unchanged (counted as a failure unless its type is in ``ignore``).
        ``KeyboardInterrupt`` and other non-``Exception`` errors are not
        counted.
        """
        pending = self._admit()
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            pending.failure(e)
            raise
        except BaseException:
            pending.cancel()
            raise
        pending.success()
        return result

    async def acall(
        self,
        fn: Callable[..., Awaitable[T]] | Awaitable[T],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """Await ``fn(*args, **kwargs)`` (or the awaitable ``fn``) through the breaker.

        Raises :class:`spe.CircuitOpenError` without running it when the
        circuit refuses the call (a coroutine passed in is then closed);
        :class:`spe.CallTimeoutError` after cancelling it at ``timeout_s``;
        otherwise whatever it raises, unchanged. A cancelled ``acall``
        records nothing.

        >>> import asyncio, spe
        >>> async def fetch(x):
        ...     await asyncio.sleep(0)
        ...     return x
        >>> breaker = spe.CircuitBreaker(timeout_s=1.0)
        >>> asyncio.run(breaker.acall(fetch, 7))
        7
        >>> async def hang():
        ...     await asyncio.sleep(60)
        >>> try:
        ...     asyncio.run(spe.CircuitBreaker(timeout_s=0.05).acall(hang))
        ... except spe.CallTimeoutError as e:
        ...     print(e.timeout_s)
        0.05
        """
        try:
            pending = self._admit()
        except _spe.CircuitOpenError:
            if inspect.iscoroutine(fn):
                fn.close()
            raise
        try:
            awaitable = fn(*args, **kwargs) if callable(fn) else fn
            timeout = self.timeout_s
            if timeout is None:
                ok, value = await _outcome(awaitable)
            else:
                try:
                    ok, value = await asyncio.wait_for(_outcome(awaitable), timeout)
                except asyncio.TimeoutError:
                    raise pending.timed_out() from None
        except BaseException:
            pending.cancel()  # a no-op if the call already ended (timeout)
            raise
        if ok:
            pending.success()
            return value  # type: ignore[no-any-return]
        pending.failure(value)
        raise value

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` so every call goes through the breaker.

        A coroutine function gets an async wrapper (:meth:`acall`), any
        other callable a plain one (:meth:`call`). The wrapper's
        ``breaker`` attribute is this breaker.
        """
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(fn, *args, **kwargs)

            async_wrapper.breaker = self  # type: ignore[attr-defined]
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        wrapper.breaker = self  # type: ignore[attr-defined]
        return wrapper


async def _outcome(awaitable: Awaitable[T]) -> tuple[bool, Any]:
    """Await, and return ``(True, result)`` or ``(False, exception)``.

    Keeps an exception of the awaitable itself (even a ``TimeoutError``)
    apart from the timeout of ``wait_for`` around it.
    """
    try:
        return True, await awaitable
    except Exception as e:
        return False, e
