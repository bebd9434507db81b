"""SP-E quickstart: forecast a synthetic year of demand, offline, and chart it.

    python examples/quickstart.py [--out forecast.png]

Generates a year of hourly weather and electricity demand for Paris with the
synthetic generator (no network needed), backtests the models on it, lets
``model="auto"`` pick one, forecasts the next 48 hours with 80 % and 95 %
intervals, and saves a PNG chart of the last week and the forecast.

Needs numpy and pandas; the chart needs matplotlib (``pip install
'spe[plot]'``) and is skipped, with a message, without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import spe

HORIZON = 48
SEASONS = (24, 168)  # a day and a week of hours


def main(out: Path) -> int:
    gen = spe.SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35)
    year = gen.frame("2025-01-01T00:00:00Z", hours=8760)
    demand = year["demand_mw"]
    history, actual = demand.iloc[:-HORIZON], demand.iloc[-HORIZON:]
    print(f"{len(history)} hours of synthetic demand, {history.min():.0f} to {history.max():.0f} MW")

    print("\nBacktest, 7 folds of 24 hours:")
    for model in ("seasonal_naive", "mstl", "ets"):
        scores = spe.backtest(history, horizon=24, season_length=SEASONS, model=model, folds=7)
        print(
            f"  {model:15s} MASE {scores['mase']:.3f}  MAPE {scores['mape']:5.2f} %  "
            f"80 % coverage {scores['coverage'][80]:.0%}"
        )

    fc = spe.forecast(history, horizon=HORIZON, season_length=SEASONS, model="auto")
    error = (fc.to_pandas()["mean"] - actual).abs().mean()
    inside = ((actual >= fc.lower(95)) & (actual <= fc.upper(95))).mean()
    print(f"\n{fc.model}: next {HORIZON} h, mean absolute error {error:.1f} MW, "
          f"{inside:.0%} of actuals inside the 95 % interval")

    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nmatplotlib is not installed (pip install 'spe[plot]'): no chart.")
        return 0

    df = fc.to_pandas()
    last_week = history.iloc[-7 * 24 :]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(last_week.index, last_week, color="0.35", lw=1.2, label="history")
    ax.plot(actual.index, actual, color="0.35", lw=1.2, ls=":", label="actual (held out)")
    ax.fill_between(df.index, df["lower_95"], df["upper_95"], color="tab:blue", alpha=0.15,
                    label="95 % interval")
    ax.fill_between(df.index, df["lower_80"], df["upper_80"], color="tab:blue", alpha=0.3,
                    label="80 % interval")
    ax.plot(df.index, df["mean"], color="tab:blue", lw=2, label=f"forecast ({fc.model})")
    ax.set_title("Paris (synthetic): electricity demand, last week and the next 48 hours")
    ax.set_ylabel("MW")
    ax.legend(loc="upper left", ncol=3, fontsize="small")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"\nChart saved to {out}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("quickstart_forecast.png"),
                        help="where to save the PNG chart (default: %(default)s)")
    raise SystemExit(main(parser.parse_args().out))
