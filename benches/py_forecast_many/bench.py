"""spe.forecast_many next to statsforecast on many series, same machine, same run.

Run it through `benches/py_forecast_many/run` (it prepares the virtual
environment with statsforecast and a release build of `spe`).

Data: 100 synthetic hourly demand series of 8 weeks (1,344 points) from
`spe.SyntheticGenerator`, one site per series (seed, latitude and longitude
vary), each scaled by its own factor; the next 24 hours of each series are
held out. Every model fits the 1,344 points and forecasts the 24 hours with
80 % and 95 % intervals; seasonal periods 24 and 168.

Models, each run on all 100 series at once with its library's own parallelism
across the machine's cores:

- `spe.forecast_many(model="mstl")` and `model="seasonal_naive"` (which picks
  the weekly period, 168, with 8 weeks of history), threads in Rust
  (`n_jobs`: one per core), plus `model="auto"` for reference;
- statsforecast `MSTL(season_length=[24, 168])` (its default trend model,
  AutoETS) and `SeasonalNaive(season_length=168)`, through
  `StatsForecast(..., n_jobs=-1)` (one process per core).

Throughput: series per second, the best of `--repeats` runs after one warm-up
run (the cold first call is reported apart). Accuracy: MASE on the held-out 24 hours, scaled by each
series' in-sample seasonal naive of period 24 (the M4 convention for hourly
data), averaged over the series; and the 80 % / 95 % interval coverage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spe

SERIES = 100
HOURS = 8 * 7 * 24  # 1,344
HORIZON = 24
SEASONS = (24, 168)
LEVELS = (80, 95)
MASE_PERIOD = 24


@dataclass
class Result:
    name: str
    library: str
    parallelism: str
    cold_s: float
    times_s: list[float]
    mean: np.ndarray  # (series, horizon)
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]

    @property
    def best_s(self) -> float:
        return min(self.times_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def make_data(n: int) -> np.ndarray:
    """`n` series of `HOURS + HORIZON` hourly demand values."""
    rng = np.random.default_rng(2026)
    rows = []
    for k in range(n):
        gen = spe.SyntheticGenerator(seed=k, latitude=43.0 + (k % 8), longitude=-1.0 + (k % 9),
                                     timezone="Europe/Paris", country="FR")
        demand = gen.arrays("2026-01-05T00:00:00Z", HOURS + HORIZON)["demand_mw"]
        rows.append(demand * rng.uniform(0.2, 5.0))
    return np.stack(rows)


def mase(train: np.ndarray, actual: np.ndarray, forecast: np.ndarray) -> float:
    scores = []
    for y, a, f in zip(train, actual, forecast):
        scale = np.mean(np.abs(y[MASE_PERIOD:] - y[:-MASE_PERIOD]))
        scores.append(np.mean(np.abs(a - f)) / scale)
    return float(np.mean(scores))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    return float(np.mean((actual >= lower) & (actual <= upper)))


def timed(run: Callable[[], tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]],
          repeats: int) -> tuple[float, list[float], tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]]:
    t0 = time.perf_counter()
    out = run()
    cold = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    return cold, times, out


def spe_run(train: np.ndarray, model: str, n_jobs: int | None) -> Callable[[], tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]]:
    def run() -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]:
        fcs = spe.forecast_many(train, HORIZON, SEASONS, model=model, levels=LEVELS, n_jobs=n_jobs)
        assert all(f is not None for f in fcs)
        mean = np.stack([f.mean for f in fcs])  # type: ignore[union-attr]
        lower = {lv: np.stack([f.lower(lv) for f in fcs]) for lv in LEVELS}  # type: ignore[union-attr]
        upper = {lv: np.stack([f.upper(lv) for f in fcs]) for lv in LEVELS}  # type: ignore[union-attr]
        return mean, lower, upper
    return run


def statsforecast_run(train: np.ndarray, model: object, alias: str, n_jobs: int) -> Callable[[], tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]]:
    import pandas as pd
    from statsforecast import StatsForecast

    n = train.shape[0]
    ds = pd.date_range("2026-01-05", periods=HOURS, freq="h")
    df = pd.DataFrame({
        "unique_id": np.repeat(np.arange(n), HOURS),
        "ds": np.tile(ds, n),
        "y": train.reshape(-1),
    })

    def run() -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]:
        sf = StatsForecast(models=[model], freq="h", n_jobs=n_jobs)
        out = sf.forecast(df=df, h=HORIZON, level=list(LEVELS))
        out = out.sort_values(["unique_id", "ds"])
        shape = (n, HORIZON)
        mean = out[alias].to_numpy().reshape(shape)
        lower = {lv: out[f"{alias}-lo-{lv}"].to_numpy().reshape(shape) for lv in LEVELS}
        upper = {lv: out[f"{alias}-hi-{lv}"].to_numpy().reshape(shape) for lv in LEVELS}
        return mean, lower, upper
    return run


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report(results: list[Result], train: np.ndarray, actual: np.ndarray, cores: int,
           notes: list[str], load: str) -> str:
    lines = [
        "# `spe.forecast_many` vs statsforecast: 100 hourly series of 8 weeks",
        "",
        f"Measured {dt.date.today().isoformat()} with `benches/py_forecast_many/run` "
        f"on this machine ({cores} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()}), every model in the same run.",
        "",
        f"{train.shape[0]} synthetic series (`spe.SyntheticGenerator`, one site and scale per series), "
        f"{train.shape[1]} hourly points each, periods 24 and 168; each model forecasts the next "
        f"{HORIZON} hours with 80 % and 95 % intervals; MASE on those held-out hours (scale: "
        "in-sample seasonal naive of period 24), averaged over the series. Time: the whole batch, "
        "best of the timed runs after a warm-up run; `cold` is the first call. "
        f"Load average when the run started: {load}.",
        "",
        "| model | library, parallelism | series/s | batch (best / median) | cold first call | MASE | 80 % cov. | 95 % cov. |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.library}, {r.parallelism} | {train.shape[0] / r.best_s:,.0f} | "
            f"{r.best_s * 1000:,.0f} ms / {r.median_s * 1000:,.0f} ms | {r.cold_s * 1000:,.0f} ms | "
            f"{mase(train, actual, r.mean):.3f} | {coverage(actual, r.lower[80], r.upper[80]):.0%} | "
            f"{coverage(actual, r.lower[95], r.upper[95]):.0%} |"
        )
    by_name = {r.name: r for r in results}
    pairs = [("`mstl`", "`MSTL(season_length=[24, 168])`"),
             ("`seasonal_naive`", "`SeasonalNaive(season_length=168)`")]
    comparisons = []
    for ours, theirs in pairs:
        if ours in by_name and theirs in by_name:
            a, b = by_name[ours], by_name[theirs]
            comparisons.append(
                f"- spe {ours} vs statsforecast {theirs}: {b.best_s / a.best_s:,.0f}× the series per "
                f"second; MASE {mase(train, actual, a.mean):.3f} vs {mase(train, actual, b.mean):.3f}; "
                f"95 % coverage {coverage(actual, a.lower[95], a.upper[95]):.0%} vs "
                f"{coverage(actual, b.lower[95], b.upper[95]):.0%}."
            )
    if comparisons:
        lines += ["", *comparisons]
    lines += [
        "",
        "The machine is shared and small: the absolute figures move with its load; the ratios "
        "between models measured in one run much less.",
        "",
        "Versions: " + ", ".join(f"{p} {version(p)}" for p in ("spe", "statsforecast", "coreforecast", "numpy", "pandas")) + ".",
        "",
        *notes,
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=SERIES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="spe only")
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    data = make_data(args.series)
    train, actual = data[:, :HOURS], data[:, HOURS:]
    results: list[Result] = []
    notes: list[str] = []

    for name, model in [("mstl", "mstl"), ("seasonal_naive", "seasonal_naive"), ("auto", "auto")]:
        print(f"spe {name} ...", file=sys.stderr, flush=True)
        cold, times, (mean, lower, upper) = timed(spe_run(train, model, None), args.repeats)
        results.append(Result(f"`{name}`", "spe", f"{cores} threads (Rust, GIL released)",
                              cold, times, mean, lower, upper))

    if not args.no_peers:
        try:
            from statsforecast.models import MSTL, SeasonalNaive
        except ImportError as e:
            notes.append(f"statsforecast could not be imported ({e}): not measured.")
        else:
            for name, model, alias in [
                ("`MSTL(season_length=[24, 168])`", MSTL(season_length=list(SEASONS)), "MSTL"),
                ("`SeasonalNaive(season_length=168)`", SeasonalNaive(season_length=168), "SeasonalNaive"),
            ]:
                print(f"statsforecast {alias} ...", file=sys.stderr, flush=True)
                cold, times, (mean, lower, upper) = timed(
                    statsforecast_run(train, model, alias, n_jobs=-1), args.repeats)
                results.append(Result(name, "statsforecast", f"`n_jobs=-1` ({cores} processes)",
                                      cold, times, mean, lower, upper))

    text = report(results, train, actual, cores, notes, load)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
