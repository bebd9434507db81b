"""Property tests: any seed and site give plausible, finite values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import spe
from columns import FLOAT_COLUMNS

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**64 - 1),
    latitude=st.floats(min_value=-66.0, max_value=66.0),
    longitude=st.floats(min_value=-180.0, max_value=180.0),
    start_hour=st.integers(min_value=0, max_value=50 * 8766),
    hours=st.integers(min_value=1, max_value=96),
)
def test_values_are_finite_and_physical(
    seed: int, latitude: float, longitude: float, start_hour: int, hours: int
) -> None:
    gen = spe.SyntheticGenerator(seed=seed, latitude=latitude, longitude=longitude,
                                 timezone="UTC", country="none")
    a = gen.arrays(EPOCH + timedelta(hours=start_hour), hours)
    for name in FLOAT_COLUMNS:
        assert a[name].shape == (hours,)
        assert np.isfinite(a[name]).all(), name
    assert (a["demand_mw"] > 0).all()
    assert (a["shortwave_radiation"] >= 0).all()
    assert ((a["cloud_cover"] >= 0) & (a["cloud_cover"] <= 100)).all()
    for name in ["wind_speed_10m", "solar_mw", "wind_mw", "other_mw", "imports_mw"]:
        assert (a[name] >= 0).all(), name


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**64 - 1),
    offset=st.integers(min_value=0, max_value=48),
    hours=st.integers(min_value=1, max_value=48),
)
def test_any_window_agrees_with_a_larger_one(seed: int, offset: int, hours: int) -> None:
    gen = spe.SyntheticGenerator(seed=seed)
    whole = gen.arrays("2026-03-28T00:00:00Z", hours=96)  # spans the spring DST change
    part = gen.arrays(datetime(2026, 3, 28, tzinfo=timezone.utc) + timedelta(hours=offset), hours)
    for name in whole:
        np.testing.assert_array_equal(part[name], whole[name][offset : offset + hours], err_msg=name)
