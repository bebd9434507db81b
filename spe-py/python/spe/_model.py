"""Models fitted once and forecast many times: :class:`Model` and :class:`FittedModel`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, SupportsFloat, SupportsIndex

import numpy as np
import numpy.typing as npt

from spe import _spe
from spe._forecast import (
    Levels,
    SeasonLength,
    _check_future_index,
    _check_index,
    _datetime_index,
    _future_index_after,
)
from spe._spe import Forecast

__all__ = ["FittedModel", "Model"]


class Model:
    """A model to fit: its name and seasonal periods, not fitted yet.

    ``model`` and ``season_length`` are those of :func:`spe.forecast`
    (``"auto"``, ``"seasonal_naive"``, ``"naive"``, ``"ets"``, ``"mstl"``,
    ``"mstl_loess"``, ``"regression"``; one period or several, 1 for none).
    ``box_cox`` is that of :func:`spe.forecast`: ``None``, or the Box–Cox
    λ the model is fitted under (``0`` for a log transform).
    :meth:`fit` fits it on a history and returns a :class:`FittedModel`,
    which forecasts any horizon at any levels without fitting again, and
    says what it learned (``params``, ``components``, ``residuals``).

    ``spe.forecast(y, h, s, model=m, box_cox=b)`` is
    ``spe.Model(m, s, box_cox=b).fit(y).predict(h)``.

    >>> import numpy as np, spe
    >>> t = np.arange(24 * 28)
    >>> y = 100 + 10 * np.sin(2 * np.pi * t / 24) + 0.01 * t
    >>> fitted = spe.Model("mstl", season_length=(24, 168)).fit(y)
    >>> fitted.model
    'mstl(24,168)+ets(A,A,N)'
    >>> sorted(fitted.components)
    ['adjusted', 'seasonal_168', 'seasonal_24']
    >>> fitted.predict(48).mean.shape, fitted.predict(12, levels=90).levels
    ((48,), (90,))
    """

    __slots__ = ("_box_cox", "_name", "_season_length")

    def __init__(
        self,
        model: str = "auto",
        season_length: SeasonLength = 1,
        box_cox: SupportsFloat | None = None,
    ) -> None:
        name, periods, lambda_ = _spe._model_spec(model, season_length, box_cox)
        self._name: str = name
        self._season_length: tuple[int, ...] = tuple(periods)
        self._box_cox: float | None = lambda_

    @property
    def name(self) -> str:
        """The model's name, as ``model=`` takes it (``"auto"``, ``"ets"``, …)."""
        return self._name

    @property
    def season_length(self) -> tuple[int, ...]:
        """The seasonal periods, sorted (a period of 1 dropped)."""
        return self._season_length

    @property
    def box_cox(self) -> float | None:
        """The Box–Cox λ the model is fitted under (a float), or ``None``."""
        return self._box_cox

    def fit(
        self, y: npt.ArrayLike, exog: Mapping[str, npt.ArrayLike] | None = None
    ) -> FittedModel:
        """Fit on the history ``y`` (oldest first), as :func:`spe.forecast`
        reads it: NaN gaps of up to 6 values interpolated, a pandas Series'
        ``DatetimeIndex`` checked and kept so that forecasts continue it.
        ``exog``: the regressors over the history, for ``"regression"`` and
        ``"auto"`` (then :meth:`FittedModel.predict` needs ``exog_future``).

        The fitting runs in Rust without holding the GIL. Raises as
        :func:`spe.forecast` does.
        """
        _check_index(y, exog, None)
        native = _spe._fit(y, self._season_length, self._name, exog, self._box_cox)
        return FittedModel._wrap(self, native, _datetime_index(y))

    def __repr__(self) -> str:
        box_cox = "" if self._box_cox is None else f", box_cox={self._box_cox!r}"
        return f"Model({self._name!r}, season_length={self._season_length!r}{box_cox})"

    def _key(self) -> tuple[str, tuple[int, ...], float | None]:
        return (self._name, self._season_length, self._box_cox)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, tuple[str, tuple[int, ...], float | None]]:
        return (Model, self._key())


class FittedModel:
    """A model fitted on a history (made by :meth:`Model.fit`).

    - :meth:`predict` forecasts any horizon past the history, at any levels,
      without fitting again: a :class:`spe.Forecast`, on the time index that
      continues the history's when it had one.
    - ``model`` names the fitted model as its forecasts do
      (``"auto(mstl)"``, ``"ets(A,Ad,A)"``).
    - ``params``: what it estimated, by name (finite floats; a figure that
      overflows, such as the variance of a series near 1e200, is left out).
      ETS: ``alpha``, ``beta``,
      ``phi``, ``gamma``, ``period`` (those the model has), ``sigma2``,
      ``log_likelihood``, ``aicc``, ``n_obs``. MSTL: ``window_<p>`` and
      ``cycle_smoothing_<p>`` per period, and its ETS model's parameters as
      ``ets_alpha``, …. Seasonal naive: ``period``, ``sigma`` (naive: the
      same, with period 1). Regression:
      ``heating_base_c``, ``cooling_base_c``, ``heating_slope``,
      ``cooling_slope``, ``trend_per_step``, ``sigma`` and
      ``hour_effect_<working|saturday|sunday_or_holiday>_<hh>``. ``auto``:
      those of the model it chose. Under ``box_cox``, ``box_cox_lambda``
      comes first, and the others are those of the model of the
      transformed series (its variance, likelihood, ``sigma``: on that
      scale).
    - ``components``: the series the model split the history into, one
      value per observation (MSTL: ``seasonal_<p>`` per period, and
      ``adjusted``, the trend plus remainder; they add up to the history).
      Empty for the other models. Under ``box_cox`` they are on the
      transformed scale (they add up to the transformed history).
    - ``residuals``: the in-sample one-step errors (observed − fitted), on
      the series' own scale (with ``box_cox`` too, NaN in place where the
      fitted value is beyond what the transform maps back). The
      seasonal naive has none for its first period, so fewer values.
    - ``scores``: for ``auto``, each candidate's backtest score, as
      :attr:`spe.Forecast.scores` (under ``box_cox``, scored on the
      transformed series).

    A fitted model pickles as its history and is fitted again when
    unpickled (the models are deterministic: the copy forecasts the same).
    """

    __slots__ = ("_index", "_native", "_spec")

    _spec: Model
    _native: Any
    _index: Any

    def __init__(self) -> None:
        raise TypeError("FittedModel is made by Model.fit, not directly")

    @classmethod
    def _wrap(cls, spec: Model, native: Any, index: Any) -> FittedModel:
        self = object.__new__(cls)
        self._spec = spec
        self._native = native
        self._index = index
        return self

    @property
    def spec(self) -> Model:
        """The :class:`Model` that was fitted."""
        return self._spec

    @property
    def model(self) -> str:
        """The fitted model, named as its forecasts are."""
        return str(self._native.model)

    @property
    def params(self) -> dict[str, float]:
        """The estimated parameters by name (see the class docs)."""
        return dict(self._native.params)

    @property
    def components(self) -> dict[str, npt.NDArray[np.float64]]:
        """The components by name, read-only arrays as long as the history."""
        return dict(self._native.components)

    @property
    def residuals(self) -> npt.NDArray[np.float64]:
        """The in-sample one-step residuals (read-only array)."""
        residuals: npt.NDArray[np.float64] = self._native.residuals
        return residuals

    @property
    def scores(self) -> list[dict[str, Any]] | None:
        """For ``auto``: each candidate's backtest score; else ``None``."""
        scores: list[dict[str, Any]] | None = self._native.scores
        return scores

    @property
    def n_obs(self) -> int:
        """The number of observations fitted."""
        return int(self._native.n_obs)

    @property
    def index(self) -> Any:
        """The history's ``DatetimeIndex``, or ``None``."""
        return self._index

    def predict(
        self,
        horizon: SupportsIndex,
        levels: Levels = (80, 95),
        exog_future: Mapping[str, npt.ArrayLike] | None = None,
    ) -> Forecast:
        """Forecast ``horizon`` steps past the history, with intervals at
        ``levels`` (percent). ``exog_future``: the regressors over the
        horizon, needed (and only allowed) when the model was fitted with
        ``exog``; on a ``DatetimeIndex``, it must start one step after the
        history ends. Runs in Rust without holding the GIL."""
        _check_future_index(self._index, exog_future)
        fc: Forecast = self._native.predict(horizon, levels, exog_future)
        index = _future_index_after(self._index, exog_future, fc.horizon)
        return fc if index is None else fc.with_index(index)

    def __copy__(self) -> FittedModel:
        return self  # immutable: a copy would only fit again

    def __deepcopy__(self, memo: dict[int, Any]) -> FittedModel:
        return self

    def __repr__(self) -> str:
        return (
            f"FittedModel(model={self.model!r}, n_obs={self.n_obs}, "
            f"season_length={self._spec.season_length!r})"
        )

    def __reduce__(self) -> tuple[Any, tuple[Model, Any, Any]]:
        return (FittedModel._wrap, (self._spec, self._native, self._index))
