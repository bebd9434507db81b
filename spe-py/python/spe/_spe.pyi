"""Compiled core of SP-E; import ``spe`` instead.

Type stubs of the extension module ``spe._spe``; ``mypy.stubtest spe`` checks
them against the module (see tests/test_package.py).
"""

from datetime import datetime
from typing import Any, SupportsIndex

import numpy.typing as npt
from typing_extensions import Self, disjoint_base

__all__ = ["__version__", "SpeError", "ConfigError", "SyntheticGenerator"]

__version__: str

class SpeError(Exception):
    """Base class of every exception SP-E raises."""

class ConfigError(SpeError, ValueError):
    """An invalid argument or setting; also a ``ValueError``."""

@disjoint_base
class SyntheticGenerator:
    """Deterministic synthetic weather, demand and supply for one site."""

    def __new__(
        cls,
        seed: SupportsIndex = 6168614,
        latitude: float = 48.85,
        longitude: float = 2.35,
        timezone: str = "Europe/Paris",
        country: str = "FR",
    ) -> Self: ...
    @property
    def seed(self) -> int:
        """The seed of every random stream."""
    @property
    def latitude(self) -> float:
        """Latitude in degrees north."""
    @property
    def longitude(self) -> float:
        """Longitude in degrees east."""
    @property
    def timezone(self) -> str:
        """IANA time zone name (local hours drive the demand profile)."""
    @property
    def country(self) -> str:
        """Holiday calendar: ``"FR"`` or ``"none"``."""
    def arrays(self, start: str | datetime, hours: SupportsIndex) -> dict[str, npt.NDArray[Any]]:
        """Hourly synthetic weather, demand and supply as numpy arrays.

        ``time`` is ``datetime64[ns]`` (UTC, hourly from ``start``); the other
        arrays are ``float64``, NaN where a value is missing.
        """
    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, Any]]:
        """Pickle and copy support: rebuilt from its arguments."""
