"""The synthetic generator: the compiled core plus a pandas view of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, SupportsIndex

from spe import _spe

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
    holidays (``"FR"``, or ``"none"`` to ignore them).

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
