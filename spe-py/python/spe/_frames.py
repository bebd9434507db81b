"""pandas at the edges: DataFrames in and out of the compiled core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from spe._spe import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["import_pandas", "to_arrays", "to_frame"]


def import_pandas(what: str) -> Any:
    """pandas, or an ``ImportError`` that says how to get it."""
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError(
            f"{what} needs pandas, which is not installed: pip install 'spe[pandas]' "
            "(or pip install pandas)",
            name="pandas",
        ) from e
    return pd


def to_arrays(data: Any, what: str) -> Mapping[str, Any]:
    """Hourly data as a mapping with a ``time`` entry, for the compiled core.

    A pandas DataFrame gives its columns and, as ``time``, its
    timezone-aware ``DatetimeIndex`` (or its ``time`` column); a mapping
    (e.g. what ``SyntheticGenerator.arrays`` returns) is used as is.
    """
    if hasattr(data, "columns") and hasattr(data, "index"):
        columns: dict[str, Any] = {str(c): data[c] for c in data.columns}
        if "time" in columns:
            columns["time"] = _utc_times(columns["time"], what)
        else:
            pd = import_pandas(what)
            index = data.index
            if not isinstance(index, pd.DatetimeIndex):
                raise TypeError(
                    f"{what}: the DataFrame needs a DatetimeIndex (or a 'time' column), "
                    f"not a {type(index).__name__}"
                )
            if index.tz is None:
                raise ConfigError(
                    f"{what}: the DatetimeIndex has no time zone: localize it "
                    "(df.tz_localize('UTC'), or the site's zone) so hours are not guessed"
                )
            columns["time"] = index.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")
        return columns
    if isinstance(data, Mapping):
        return data
    raise TypeError(
        f"{what} must be a pandas DataFrame on a DatetimeIndex or a dict of arrays with a "
        f"'time' array, not {type(data).__name__}"
    )


def _utc_times(time: Any, what: str) -> Any:
    """A DataFrame's ``time`` column as UTC ``datetime64[ns]``: a naive one
    is refused, as a naive index is, rather than taken for UTC."""
    dt = getattr(time, "dt", None)
    if dt is None:
        return time
    if dt.tz is None:
        raise ConfigError(
            f"{what}: the 'time' column has no time zone: localize it "
            "(df['time'].dt.tz_localize('UTC'), or the site's zone) so hours are not guessed"
        )
    return dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")


def to_frame(arrays: dict[str, Any], attrs: Mapping[str, Any]) -> pd.DataFrame:
    """A dict of arrays with ``time`` (UTC, regular) as a DataFrame on a UTC index."""
    pandas = import_pandas("this method")
    columns = dict(arrays)
    time = columns.pop("time")
    index = pandas.DatetimeIndex(time, name="time", freq="infer" if len(time) >= 3 else None)
    index = index.tz_localize("UTC")
    df = pandas.DataFrame(columns, index=index)
    df.attrs.update(attrs)
    return cast("pd.DataFrame", df)
