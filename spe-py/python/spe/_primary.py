"""The daemon thread that runs a :class:`spe.ResilientForecaster`'s primary.

The compiled module starts :func:`run` on a daemon ``threading.Thread`` for
each call of the primary. The thread runs Python code only: CPython stops
daemon threads safely at interpreter shutdown, even one still inside a
model that timed out, whereas a foreign (Rust) frame under the model's
code would not survive it. The outcome goes back through ``reply``, which
only passes it to the waiting forecaster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run(
    primary: Callable[[Any, int], Any],
    history: Any,
    horizon: int,
    reply: Callable[[bool, Any], Any],
) -> None:
    """Call ``primary(history, horizon)`` and hand ``reply`` its outcome:
    ``reply(True, answer)``, or ``reply(False, exception)`` for whatever it
    raised (``KeyboardInterrupt`` and ``SystemExit`` included: they are the
    model's failure, not this thread's)."""
    ok = True
    try:
        outcome = primary(history, horizon)
    except BaseException as exc:  # noqa: BLE001 - reported as the model's crash
        # The traceback starts in the model, not in this frame.
        tb = exc.__traceback__
        ok, outcome = False, exc.with_traceback(tb.tb_next if tb is not None else None)
    # An outcome the forecaster no longer waits for (timed out) comes back
    # here and is released with this frame.
    reply(ok, outcome)
