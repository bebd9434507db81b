"""Forecasting: one series, many series, and the time index of the result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, SupportsFloat, SupportsIndex, Union

import numpy.typing as npt

from spe import _spe
from spe._spe import Forecast

__all__ = ["forecast", "forecast_many"]

SeasonLength = Union[SupportsIndex, Sequence[SupportsIndex]]
Levels = Union[float, Sequence[float], None]


def forecast(
    y: npt.ArrayLike,
    horizon: SupportsIndex,
    season_length: SeasonLength,
    model: str = "auto",
    levels: Levels = (80, 95),
    exog: Mapping[str, npt.ArrayLike] | None = None,
    exog_future: Mapping[str, npt.ArrayLike] | None = None,
    box_cox: SupportsFloat | None = None,
) -> Forecast:
    """Forecast ``horizon`` steps of the series ``y`` with prediction intervals.

    ``y`` is any 1-D array-like of numbers (list, numpy array of any float
    dtype or strides, pandas Series), oldest first, equally spaced. NaN
    (or ``None``, ``pd.NA``) marks a missing value: gaps of up to 6 values
    are interpolated; a longer gap, or missing values at the end, raise
    :class:`spe.ForecastInputError` saying what to do.

    ``season_length`` is the seasonal period in steps, or several: ``24``
    for the daily cycle of hourly data, ``(24, 168)`` for daily and weekly
    (1 for none). ``levels`` are the interval levels in percent.

    ``model`` is one of ``"auto"`` (the best of seasonal naive, two MSTL
    smoothers, ETS and — given regressors — the weather regression, by a
    backtest on recent history; ``fc.scores`` has each one's score),
    ``"seasonal_naive"``, ``"naive"``, ``"ets"`` (alias ``"auto_ets"``: the
    best of six ETS models by AICc), ``"mstl"`` (multi-seasonal
    decomposition by moving averages plus ETS), ``"mstl_loess"`` (the same
    with STL's loess, which follows a drifting seasonal shape sooner) and ``"regression"`` (demand on heating and
    cooling degrees, hour and day type). The regression needs ``exog``, the
    regressors over the history, and ``exog_future``, over the horizon, each
    a dict or DataFrame with columns ``temperature_2m``, ``hour`` and
    ``day_type`` (:func:`spe.calendar_exog` builds them); ``"auto"`` takes
    them too.

    ``box_cox`` fits the model on the Box–Cox transform of ``y`` and
    transforms the forecast back: ``0`` for the log, which turns a seasonal
    swing that grows with the level (multiplicative seasonality) into one
    the additive models fit; any λ from −2 to 2 (``1`` is a shift: the
    model's own forecast, floored at 0). Every value of ``y`` must then be
    positive. The mean is the back-transformed point forecast (the median
    of the forecast distribution) and the interval bounds are transformed
    back, so they keep their coverage, stay positive for ``0``, and are not
    symmetric. For λ > 0 a value below the transform's range is 0; for
    λ < 0 one above it cannot be mapped back, and the forecast raises
    :class:`spe.ForecastError` naming the step (forecast a shorter horizon,
    or use a λ closer to 1). A λ out of range is a :class:`spe.ConfigError`.
    ``fc.model`` then reads ``"box_cox(0)+mstl(24)+ets(A,A,N)"``; ``"auto"``
    scores its candidates on the transformed series.

    When ``y`` is a pandas Series on a regular ``DatetimeIndex``, the
    forecast's ``index`` continues it (and :meth:`Forecast.to_pandas` uses
    it). An index with ``NaT`` or that does not increase, an ``exog`` not
    indexed like ``y``, or an ``exog_future`` that does not start one step
    after ``y`` ends is refused (:class:`spe.ConfigError`). The fitting runs
    in Rust without holding the GIL.

    Raises :class:`spe.ForecastInputError` (a ``ValueError``) for input the
    model cannot use, :class:`spe.ForecastError` if a model fails on valid
    data, :class:`spe.ConfigError` for a bad argument.

    >>> import numpy as np, spe
    >>> t = np.arange(24 * 14)
    >>> y = 100 + 10 * np.sin(2 * np.pi * t / 24)
    >>> fc = spe.forecast(y, horizon=48, season_length=24, model="seasonal_naive")
    >>> fc.model, fc.mean.shape, fc.levels
    ('seasonal_naive', (48,), (80, 95))
    >>> bool((fc.lower(95) <= fc.mean).all() and (fc.mean <= fc.upper(95)).all())
    True
    >>> spe.forecast(y, horizon=24, season_length=(24, 168)).model.startswith("auto(")
    True
    """
    _check_index(y, exog, exog_future)
    fc = _spe.forecast(y, horizon, season_length, model, levels, exog, exog_future, box_cox)
    index = _future_index(y, exog_future, fc.horizon)
    return fc if index is None else fc.with_index(index)


def forecast_many(
    ys: npt.ArrayLike | Sequence[npt.ArrayLike],
    horizon: SupportsIndex,
    season_length: SeasonLength,
    model: str = "auto",
    levels: Levels = (80, 95),
    n_jobs: SupportsIndex | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    box_cox: SupportsFloat | None = None,
) -> list[Forecast | None]:
    """Forecast many series at once, in parallel across cores.

    ``ys`` is a 2-D array-like (one series per row) or a sequence of 1-D
    array-likes (lengths may differ; pandas Series keep their index, as in
    :func:`forecast`). The other arguments are those of :func:`forecast`,
    ``box_cox`` too (``model="regression"`` is not available here). ``n_jobs`` is the number
    of threads (default: one per core); the series are shared among them
    in Rust, without the GIL.

    Returns one :class:`Forecast` per series, in order. A series that
    cannot be forecast raises (``on_error="raise"``, the default: the
    message names the series) or leaves ``None`` in its place
    (``on_error="skip"``). That includes a pandas Series whose time index
    :func:`forecast` refuses (``NaT``, not increasing, duplicated times:
    :class:`spe.ConfigError`), found before anything is forecast.

    >>> import numpy as np, spe
    >>> t = np.arange(24 * 14)
    >>> Y = np.stack([k + np.sin(2 * np.pi * t / 24) for k in range(1, 6)])
    >>> fcs = spe.forecast_many(Y, horizon=24, season_length=24, model="mstl")
    >>> len(fcs), fcs[4].mean.shape, fcs[0].model.startswith("mstl")
    (5, (24,), True)
    >>> spe.forecast_many([Y[0], [1.0]], 24, 24, model="naive", on_error="skip")[1] is None
    True
    """
    if not isinstance(ys, (list, tuple)) or on_error not in ("raise", "skip"):
        # One 2-D array (no time index), or a bad on_error for the core to refuse.
        return list(
            _spe.forecast_many(ys, horizon, season_length, model, levels, n_jobs, on_error, box_cox)
        )
    # The time-index checks of forecast(), series by series.
    refused: set[int] = set()
    for i, y in enumerate(ys):
        try:
            _check_index(y, None, None)
        except _spe.ConfigError as e:
            if on_error == "raise":
                raise _spe.ConfigError(f"series {i}: {e}") from None
            refused.add(i)
    kept = [y for i, y in enumerate(ys) if i not in refused]
    answers = iter(
        _spe.forecast_many(kept, horizon, season_length, model, levels, n_jobs, on_error, box_cox)
    )
    fcs: list[Forecast | None] = []
    for i, y in enumerate(ys):
        fc = None if i in refused else next(answers)
        if fc is not None:
            index = _future_index(y, None, fc.horizon)
            if index is not None:
                fc = fc.with_index(index)
        fcs.append(fc)
    return fcs


def _future_index(y: Any, exog_future: Any, horizon: int) -> Any:
    """The time index of the forecast steps, if the inputs tell it.

    The index of ``exog_future`` when it is a pandas object with one entry
    per step; else, for a pandas Series ``y`` on a ``DatetimeIndex`` with a
    known or inferable frequency, the ``horizon`` steps after its end.
    """
    return _future_index_after(_datetime_index(y), exog_future, horizon)


def _future_index_after(index: Any, exog_future: Any, horizon: int) -> Any:
    """:func:`_future_index` for a history on ``index`` (a ``DatetimeIndex``
    or ``None``)."""
    future_index = getattr(exog_future, "index", None)
    if future_index is not None and _is_datetime_index(future_index) and len(future_index) == horizon:
        return future_index
    if index is None:
        return None
    freq = _freq(index)
    if freq is None:
        return None
    import pandas as pd

    return pd.date_range(start=index[-1] + freq, periods=horizon, freq=freq, name=index.name)


def _datetime_index(y: Any) -> Any:
    """``y``'s index if it is a pandas ``DatetimeIndex``, else ``None``."""
    index = getattr(y, "index", None)
    return index if index is not None and _is_datetime_index(index) else None


def _freq(index: Any) -> Any:
    """The step of an increasing ``DatetimeIndex``: its ``freq``, else the
    one pandas infers from three or more entries, else ``None``."""
    if index.freq is not None:
        return index.freq
    if len(index) < 3:
        return None
    import pandas as pd

    try:
        return pd.DatetimeIndex(index, freq="infer").freq
    except (TypeError, ValueError):
        return None


def _check_index(y: Any, exog: Any, exog_future: Any) -> None:
    """Refuse time indexes that would put values at the wrong times.

    ``y``'s ``DatetimeIndex`` must have no ``NaT`` and increase; ``exog``'s
    index, if it is one, must be ``y``'s; ``exog_future``'s, if it is one,
    must start one step after ``y`` ends. Raises :class:`spe.ConfigError`.
    """
    index = _datetime_index(y)
    if index is None:
        return
    if index.hasnans:
        raise _spe.ConfigError("the series' index has a missing time (NaT): drop or fill it")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise _spe.ConfigError(
            "the series' index does not increase: sort it (.sort_index()) and drop duplicate times"
        )
    exog_index = getattr(exog, "index", None)
    if exog_index is not None and _is_datetime_index(exog_index) and not exog_index.equals(index):
        raise _spe.ConfigError(
            "exog's index is not the series' index: align them, e.g. exog.reindex(y.index)"
        )
    _check_future_index(index, exog_future)


def _check_future_index(index: Any, exog_future: Any) -> None:
    """Refuse an ``exog_future`` on a ``DatetimeIndex`` that does not start
    one step after ``index`` (the history's, or ``None``) ends."""
    if index is None:
        return
    future_index = getattr(exog_future, "index", None)
    freq = _freq(index)
    if (
        future_index is not None
        and _is_datetime_index(future_index)
        and len(future_index) > 0
        and freq is not None
        and future_index[0] != index[-1] + freq
    ):
        raise _spe.ConfigError(
            f"exog_future's index starts at {future_index[0]}, not one step after the "
            f"series ends ({index[-1] + freq})"
        )


def _is_datetime_index(index: Any) -> bool:
    import sys

    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(index, pd.DatetimeIndex)
