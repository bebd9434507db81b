"""Forecasting comparison: SP-E's models next to statsforecast and augurs.

Run it through `benches/compare/run`, which prepares the virtual environment,
the Rust binary and the data. Every model goes through the same protocol
(see README.md): the last `origins` non-overlapping windows of `horizon`
steps, fit on all the history before each origin, forecast with 80 % and
95 % intervals, refit at each origin. The Rust binary returns its forecasts
and timings as JSON; the peers run in this process; the metrics below are
computed here, with the same code for every model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402

LEVELS = (80, 95)


@dataclass
class Series:
    name: str
    path: Path
    periods: list[int]
    description: str
    full_repeats: int = 0  # Rust only: time fit + predict on the whole series


@dataclass
class Fold:
    origin: int
    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    ms: float


@dataclass
class Run:
    name: str
    library: str
    folds: list[Fold] = field(default_factory=list)
    cold_ms: float | None = None
    full_ms: list[float] = field(default_factory=list)
    error: str | None = None
    note: str = ""


@dataclass
class Scores:
    mape: float
    mase: float
    coverage: dict[int, float]
    mean_ms: float


# ---------------------------------------------------------------- metrics


def seasonal_naive_scale(train: np.ndarray, m: int) -> float:
    """In-sample MAE of the seasonal naive forecast with period m."""
    if len(train) <= m:
        raise ValueError(f"training data of {len(train)} points is too short for period {m}")
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def score(run: Run, y: np.ndarray, horizon: int, m: int) -> Scores:
    """MAPE, MASE and interval coverage over every forecast point of every fold.

    MASE = mean over folds of MAE_fold / scale_fold, where scale_fold is the
    in-sample MAE of the seasonal naive with period m on that fold's training
    data; with the same number of points in every fold this equals the mean
    of |error| / scale over all points.
    """
    abs_pct, scaled, inside = [], [], {lv: [] for lv in LEVELS}
    for f in run.folds:
        actual = y[f.origin : f.origin + horizon]
        err = np.abs(actual - f.mean)
        abs_pct.append(100.0 * err / np.abs(actual))
        scaled.append(err / seasonal_naive_scale(y[: f.origin], m))
        for lv in LEVELS:
            inside[lv].append((f.lower[lv] <= actual) & (actual <= f.upper[lv]))
    return Scores(
        mape=float(np.mean(np.concatenate(abs_pct))),
        mase=float(np.mean(np.concatenate(scaled))),
        coverage={lv: 100.0 * float(np.mean(np.concatenate(inside[lv]))) for lv in LEVELS},
        mean_ms=float(np.mean([f.ms for f in run.folds])),
    )


def selftest() -> None:
    """Check the metric code on values worked out by hand."""
    y = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 3.0, 2.0, 4.0])
    # period 2: training y[:6] = 1 2 1 2 1 3 → |diffs| 0 0 0 1 → scale 0.25
    assert seasonal_naive_scale(y[:6], 2) == 0.25
    run = Run("t", "t")
    run.folds.append(
        Fold(
            origin=6,
            mean=np.array([2.5, 4.0]),
            lower={80: np.array([2.2, 3.0]), 95: np.array([1.0, 3.0])},
            upper={80: np.array([2.4, 5.0]), 95: np.array([3.0, 5.0])},
            ms=1.0,
        )
    )
    s = score(run, y, horizon=2, m=2)
    assert math.isclose(s.mape, (25.0 + 0.0) / 2)
    assert math.isclose(s.mase, (0.5 / 0.25 + 0.0) / 2)
    assert s.coverage == {80: 50.0, 95: 100.0}


# ---------------------------------------------------------------- runners


def check_forecast(out: dict, horizon: int) -> tuple[np.ndarray, dict, dict]:
    def arr(key):
        a = np.asarray(out[key], dtype=float)
        if a.shape != (horizon,):
            raise ValueError(f"{key} has shape {a.shape}, expected ({horizon},)")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{key} has non-finite values")
        return a

    return (
        arr("mean"),
        {lv: arr(f"lo-{lv}") for lv in LEVELS},
        {lv: arr(f"hi-{lv}") for lv in LEVELS},
    )


def run_python_model(run: Run, fit_predict, y: np.ndarray, origins: list[int], horizon: int) -> Run:
    """The protocol for a model running in this process.

    One untimed-for-the-mean call on the first origin first (its time is the
    cold figure: it includes any lazy initialisation or JIT), then the timed
    origins. The clock runs around fit + predict only.
    """
    try:
        t0 = time.perf_counter()
        fit_predict(np.ascontiguousarray(y[: origins[0]]), horizon)
        run.cold_ms = 1e3 * (time.perf_counter() - t0)
        for origin in origins:
            train = np.ascontiguousarray(y[:origin])
            t0 = time.perf_counter()
            out = fit_predict(train, horizon)
            ms = 1e3 * (time.perf_counter() - t0)
            mean, lower, upper = check_forecast(out, horizon)
            run.folds.append(Fold(origin, mean, lower, upper, ms))
    except Exception as e:  # a peer's failure goes in the table
        run.error = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        run.folds.clear()
        traceback.print_exc(file=sys.stderr)
    return run


def statsforecast_models(series: Series) -> list[tuple[Run, object]]:
    m = min(series.periods)
    names = [
        ("SeasonalNaive", f"statsforecast SeasonalNaive(season_length={m})"),
        ("AutoETS", f"statsforecast AutoETS(season_length={m})"),
        ("MSTL", f"statsforecast MSTL(season_length={series.periods})"),
    ]
    try:
        from statsforecast.models import MSTL, AutoETS, SeasonalNaive
    except Exception as e:
        return [(Run(label, "statsforecast", error=f"not available: {e}"), None) for _, label in names]

    def make(kind):
        def fit_predict(y, h):
            if kind == "SeasonalNaive":
                model = SeasonalNaive(season_length=m)
            elif kind == "AutoETS":
                model = AutoETS(season_length=m)
            else:
                model = MSTL(season_length=list(series.periods))
            model.fit(y)
            return model.predict(h=h, level=list(LEVELS))

        return fit_predict

    return [(Run(label, "statsforecast"), make(kind)) for kind, label in names]


def augurs_models(series: Series) -> list[tuple[Run, object]]:
    label = f"augurs MSTL.ets({series.periods})"
    try:
        import augurs
    except Exception as e:
        return [(Run(label, "augurs", error=f"not available: {e}"), None)]

    def fit_predict(y, h):
        model = augurs.MSTL.ets(list(series.periods))
        model.fit(y)
        out = {"mean": None}
        for lv in LEVELS:  # augurs takes one level per predict call
            f = model.predict(h, level=lv / 100.0)
            out["mean"] = np.asarray(f.point())
            out[f"lo-{lv}"] = np.asarray(f.lower())
            out[f"hi-{lv}"] = np.asarray(f.upper())
        return out

    return [(Run(label, "augurs"), fit_predict)]


def rust_models(binary: Path, series: Series, horizon: int, n_origins: int) -> list[Run]:
    cmd = [
        str(binary),
        "backtest",
        str(series.path),
        "--periods",
        ",".join(map(str, series.periods)),
        "--horizon",
        str(horizon),
        "--origins",
        str(n_origins),
        "--full-repeats",
        str(series.full_repeats),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        report = json.loads(proc.stdout)
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        return [Run("spe-core (all models)", "spe-core", error=detail.strip()[:200])]
    runs = []
    for m in report["models"]:
        run = Run(f"spe-core {m['name']}", "spe-core", cold_ms=m["cold_ms"], full_ms=m["full_ms"])
        run.error = m["error"]
        chosen = {}
        for f in m["folds"]:
            fc = f["forecast"]
            out = {"mean": fc["mean"]}
            for iv in fc["intervals"]:
                out[f"lo-{int(iv['level'])}"] = iv["lower"]
                out[f"hi-{int(iv['level'])}"] = iv["upper"]
            try:
                mean, lower, upper = check_forecast(out, horizon)
            except (KeyError, ValueError) as e:
                run.error = f"origin {f['origin']}: {e}"
                run.folds.clear()
                break
            run.folds.append(Fold(f["origin"], mean, lower, upper, f["fit_predict_ms"]))
            chosen[fc["model"]] = chosen.get(fc["model"], 0) + 1
        if m["name"] == "auto" and chosen:
            run.note = "chose " + ", ".join(f"{k} ×{v}" for k, v in sorted(chosen.items()))
        runs.append(run)
    return runs


# ---------------------------------------------------------------- report


# What a row's model does that its name does not say.
NOTES = {
    "spe-core seasonal_naive": "longest period covered twice (weekly here)",
    "spe-core mstl_loess": "MSTL with STL's loess (tricube windows 11, 15) + ETS",
    "spe-core mstl": "MSTL-style (moving averages) + ETS on the adjusted series",
    "spe-core auto_ets": "6 ETS candidates by AICc, period = shortest",
}


def note_for(name: str, m: int) -> str:
    if name.startswith("statsforecast AutoETS") and m > 24:
        return "statsforecast's ETS fits no seasonal model with a period over 24: non-seasonal here"
    return next((v for k, v in NOTES.items() if name.startswith(k)), "")


def fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def fmt_ms(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    if v < 1:
        return f"{v:.2f}"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def series_section(series: Series, runs: list[Run], scores: dict[str, Scores], horizon: int, n_origins: int, n: int) -> list[str]:
    m = min(series.periods)
    lines = [
        f"### {series.name}: {series.description}",
        "",
        f"{n} points, periods {series.periods}, {n_origins} origins × {horizon} steps, MASE scale: seasonal naive with period {m}.",
        "",
        "| model | MAPE % | MASE | cov. 80 % | cov. 95 % | fit+predict ms (mean of "
        f"{n_origins}) | first call ms | note |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in runs:
        s = scores.get(r.name)
        if s is None:
            lines.append(f"| {r.name} | — | — | — | — | — | — | failed: {r.error} |")
            continue
        lines.append(
            f"| {r.name} | {fmt(s.mape, 2)} | {fmt(s.mase, 3)} | {fmt(s.coverage[80])} | "
            f"{fmt(s.coverage[95])} | {fmt_ms(s.mean_ms)} | {fmt_ms(r.cold_ms)} | {r.note or note_for(r.name, m)} |"
        )
    lines.append("")
    return lines


def targets_lines(series: Series, runs: list[Run], scores: dict[str, Scores]) -> list[str]:
    out = []
    auto = scores.get("spe-core auto")
    peers = {r.name: scores[r.name] for r in runs if r.library != "spe-core" and r.name in scores}
    if auto is None:
        return [f"- {series.name}: `auto` failed, no target can be checked."]
    if peers:
        best_name, best = min(peers.items(), key=lambda kv: kv[1].mase)
        lower = 100.0 * (best.mase - auto.mase) / best.mase
        ok = "met" if lower >= 5.0 else "NOT met"
        how = f"{lower:.1f} % lower" if lower >= 0 else f"{-lower:.1f} % higher"
        out.append(
            f"- {series.name}: `auto` MASE {auto.mase:.3f} vs best peer {best_name} {best.mase:.3f}: "
            f"{how} (target: at least 5 % lower: {ok})"
        )
    else:
        out.append(f"- {series.name}: no peer ran, MASE target not checked")
    sf_mstl = next((scores[r.name] for r in runs if r.name.startswith("statsforecast MSTL") and r.name in scores), None)
    if sf_mstl is not None:
        ratio = sf_mstl.mean_ms / auto.mean_ms
        ok = "met" if ratio >= 10.0 else "NOT met"
        out.append(
            f"- {series.name}: `auto` fit+predict {auto.mean_ms:.1f} ms vs statsforecast MSTL "
            f"{sf_mstl.mean_ms:.0f} ms: {ratio:.1f}× as fast (target ≥ 10×: {ok})"
        )
    else:
        out.append(f"- {series.name}: statsforecast MSTL did not run, speed target not checked")
    return out


def year_lines(series: Series, runs: list[Run]) -> list[str]:
    out = []
    for r in runs:
        if r.library == "spe-core" and r.full_ms:
            med = float(np.median(r.full_ms))
            line = (
                f"- {r.name}: fit + 48-step forecast on all {series.name} points: median "
                f"{med:.1f} ms, min {min(r.full_ms):.1f} ms ({len(r.full_ms)} runs)"
            )
            if r.name == "spe-core auto":
                line += f" (target ≤ 50 ms: {'met' if med <= 50.0 else 'NOT met'})"
            out.append(line)
    return out


def version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def command_output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_lines() -> list[str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    commit = command_output(["git", "rev-parse", "--short", "HEAD"])
    # What the figures depend on: the library and this harness.
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no", "--", "spe-core", "benches"])
    changed = [line.split(maxsplit=1)[-1] for line in dirty.splitlines() if line.strip()] if dirty != "unknown" else []
    threads = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"))
    return [
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {cpu}, {os.cpu_count()} cores, this run pinned to {affinity} core(s); load average at start {load} (other jobs were running)",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}, {command_output(['rustc', '--version'])}",
        f"- SP-E commit {commit}{' with uncommitted changes in ' + ', '.join(changed[:6]) + (' …' if len(changed) > 6 else '') if changed else ''}, release build",
        f"- statsforecast {version('statsforecast')}, augurs {version('augurs')}, numpy {version('numpy')}, pandas {version('pandas')}, pmdarima {version('pmdarima')}",
        f"- threads: {threads}",
    ]


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", type=Path, required=True, help="the forecast_compare binary")
    p.add_argument("--taylor", type=Path, required=True, help="taylor.csv")
    p.add_argument("--hourly", type=Path, required=True, help="hourly.csv (synthetic year)")
    p.add_argument("--out", type=Path, help="write the Markdown report here too")
    p.add_argument("--horizon", type=int, default=48)
    p.add_argument("--origins", type=int, default=8)
    p.add_argument("--full-repeats", type=int, default=7, help="timed fits on the whole hourly year (Rust)")
    p.add_argument("--no-peers", action="store_true", help="run SP-E's models only")
    args = p.parse_args(argv)

    selftest()
    all_series = [
        Series("taylor", args.taylor, [48, 336], "England & Wales half-hourly demand, June–August 2000 (Taylor 2003)"),
        Series("hourly", args.hourly, [24, 168], "one year of hourly synthetic demand (SP-E generator, default seed, Paris, 2025)", args.full_repeats),
    ]
    report = [
        "# Forecasting comparison: results",
        "",
        "Written by `benches/compare/run`; protocol, metric definitions and data sources in [README.md](README.md).",
        "",
        *machine_lines(),
        "",
    ]
    targets, year = [], []
    for series in all_series:
        y = np.asarray(data.read_series(series.path), dtype=float)
        n = len(y)
        origins = [n - args.horizon * (args.origins - k) for k in range(args.origins)]
        print(f"== {series.name}: {n} points, origins {origins[0]}..{origins[-1]}", file=sys.stderr, flush=True)
        runs = rust_models(args.bin, series, args.horizon, args.origins)
        if not args.no_peers:
            for run, fp in statsforecast_models(series) + augurs_models(series):
                if fp is not None:
                    print(f"   {run.name} ...", file=sys.stderr, flush=True)
                    run_python_model(run, fp, y, origins, args.horizon)
                runs.append(run)
        m = min(series.periods)
        scores = {}
        for r in runs:
            if r.error is None and len(r.folds) == args.origins:
                scores[r.name] = score(r, y, args.horizon, m)
            elif r.error is None:
                r.error = f"{len(r.folds)} of {args.origins} folds"
        report += series_section(series, runs, scores, args.horizon, args.origins, n)
        targets += targets_lines(series, runs, scores)
        year += year_lines(series, runs)
    report += ["### Targets (issue 4)", "", *targets, *year, ""]
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
