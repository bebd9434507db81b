"""The synthetic generator: the compiled core plus a pandas view of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, SupportsIndex

from spe import _spe
from spe._frames import to_arrays

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

__all__ = ["SyntheticGenerator"]

_PANDAS_MISSING = (
    "SyntheticGenerator.frame() needs pandas, which is not installed: "
    "pip install 'spe[pandas]' (or pip install pandas). "
    "SyntheticGenerator.arrays() returns the same data as numpy arrays without it."
)


class SyntheticGenerator(_spe.SyntheticGenerator):
    """Deterministic synthetic weather, demand and supply for one site.

    ``seed`` is an integer from 0 to 2**64 - 1 (default 6168614, the seed the
    example server uses, so both show the same estimate); ``latitude`` and
    ``longitude`` are in degrees (north, east); ``timezone`` is an IANA name
    whose local hours drive the demand profile; ``country`` picks the public
    holidays (``"FR"``, or ``"none"`` to ignore them). ``params`` overrides
    the generator's parameters (a dict as :attr:`params` gives; partial
    dicts keep the defaults elsewhere): :meth:`calibrate` fits them to a
    real site.

    Same seed and site give the same values for a given hour, whatever window
    is asked for: two overlapping windows agree exactly on their overlap.

    Raises :class:`spe.ConfigError` (also a ``ValueError``) for an invalid
    argument, e.g. a latitude outside -90..90 or an unknown time zone.

    >>> import spe
    >>> gen = spe.SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35)
    >>> gen
    SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35, timezone='Europe/Paris', country='FR')
    >>> a = gen.arrays("2026-01-01T00:00:00Z", hours=24)
    >>> sorted(a) == sorted(["time", "temperature_2m", "shortwave_radiation", "cloud_cover",
    ...                      "wind_speed_10m", "demand_mw", "solar_mw", "wind_mw",
    ...                      "other_mw", "imports_mw"])
    True
    >>> bool((a["demand_mw"] > 0).all())
    True
    """

    __slots__ = ()

    def frame(self, start: str | datetime, hours: SupportsIndex) -> pd.DataFrame:
        """Hourly synthetic weather, demand and supply as a pandas DataFrame.

        The columns and arguments are those of :meth:`arrays` (see there for
        units and for what ``start`` accepts); the ``time`` array becomes the
        index: a ``DatetimeIndex`` named ``time``, in UTC, hourly. Use
        ``df.tz_convert(gen.timezone)`` for local time. A missing value is
        NaN.

        Needs pandas (``pip install 'spe[pandas]'``); raises ``ImportError``
        saying so without it.

        >>> import spe
        >>> gen = spe.SyntheticGenerator(seed=7)
        >>> df = gen.frame("2026-01-01T00:00:00Z", hours=72)
        >>> df.shape
        (72, 9)
        >>> df.index[0]
        Timestamp('2026-01-01 00:00:00+0000', tz='UTC')
        >>> df.index.name, df.index.freqstr
        ('time', 'h')
        """
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(_PANDAS_MISSING, name="pandas") from e

        columns = self.arrays(start, hours)
        time = columns.pop("time")
        index = pd.DatetimeIndex(time, name="time", freq=pd.offsets.Hour()).tz_localize("UTC")
        return pd.DataFrame(columns, index=index)

    def calibrate(self, history: Any) -> tuple[SyntheticGenerator, dict[str, Any]]:
        """Fit the generator to a site's recorded history.

        ``history`` is a pandas DataFrame on a timezone-aware hourly
        ``DatetimeIndex`` (or a dict of arrays with a UTC ``time`` array, as
        :meth:`arrays` returns) with ``temperature_2m`` (°C, at least 168
        hours; about a year or more fits the annual cycle too), and optionally
        ``wind_speed_10m`` (m/s) and ``demand_mw`` (MW). NaN marks a missing
        hour. The climate (temperature cycles and noise, mean wind) and,
        given demand, the demand model (base, weekend factors, heating and
        cooling sensitivity) are fitted; the rest is kept.

        Returns ``(generator, report)``: a new generator with the fitted
        parameters (same seed and site; see ``params``) so estimation mode
        stays close to the real site, and a dict of what was fitted and how
        well (``temperature``, ``wind_mean_ms``, ``demand`` with
        ``r_squared`` and ``rmse_mw``, ``hours_used``).

        Raises :class:`spe.ConfigError` if the history is too short,
        degenerate (a constant temperature or demand: a stuck sensor) or
        implausible (e.g. temperatures not warmer in the afternoon, often
        timestamps that are not UTC; a demand model worse than a constant);
        the message says which. A heating or cooling sensitivity fitted
        negative is set to 0.

        >>> import spe
        >>> real = spe.SyntheticGenerator(seed=1, params={"climate": {"temp_mean_c": 8.0}})
        >>> history = real.frame("2025-01-01T00:00:00Z", hours=2 * 8760)
        >>> fitted, report = spe.SyntheticGenerator(seed=7).calibrate(history)
        >>> round(report["temperature"]["mean_c"])
        8
        >>> fitted.params["climate"]["temp_mean_c"] == report["temperature"]["mean_c"]
        True
        """
        params, report = self._calibrate(to_arrays(history, "calibrate()"))
        generator = type(self)(
            seed=self.seed,
            latitude=self.latitude,
            longitude=self.longitude,
            timezone=self.timezone,
            country=self.country,
            params=params,
        )
        return generator, report
