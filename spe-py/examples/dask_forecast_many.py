"""Forecast many series on a Dask cluster with spe.forecast_many.

    python examples/dask_forecast_many.py [--series 200] [--chunks 8]

Builds ``--series`` synthetic hourly demand series (8 weeks each, one site
per seed), starts a local Dask cluster of 2 worker processes, and sends
chunks of series to ``spe.forecast_many`` on the workers. Inside a worker,
``forecast_many`` spreads its chunk over threads in Rust (``n_jobs``); the
``Forecast`` objects come back pickled. Checks the result against a local
run and prints the throughput.

Needs ``dask[distributed]``. A real cluster works the same way: pass its
scheduler address to ``Client`` instead of the ``LocalCluster``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import spe

HOURS = 8 * 7 * 24  # 8 weeks
HORIZON = 24
SEASONS = (24, 168)


def make_series(n: int) -> np.ndarray:
    """``n`` series of demand, one per synthetic site (seed)."""
    return np.stack([
        spe.SyntheticGenerator(seed=seed).arrays("2026-01-05T00:00:00Z", HOURS)["demand_mw"]
        for seed in range(n)
    ])


def main(series: int, chunks: int) -> int:
    from dask.distributed import Client, LocalCluster

    Y = make_series(series)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        futures = client.map(
            spe.forecast_many,
            np.array_split(Y, chunks),
            horizon=HORIZON,
            season_length=SEASONS,
            model="mstl",
            n_jobs=1,  # one thread per worker process: the cluster has 2 single-threaded workers
        )
        forecasts = [fc for chunk in client.gather(futures) for fc in chunk]
        elapsed = time.perf_counter() - t0

    assert len(forecasts) == series
    local = spe.forecast_many(Y[:3], HORIZON, SEASONS, model="mstl")
    for remote, here in zip(forecasts[:3], local):
        assert remote is not None and here is not None
        np.testing.assert_array_equal(remote.mean, here.mean)
    print(f"{series} series forecast on 2 Dask workers in {elapsed:.2f} s "
          f"({series / elapsed:.0f} series/s); first: {forecasts[0]}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=8)
    args = parser.parse_args()
    raise SystemExit(main(args.series, args.chunks))
