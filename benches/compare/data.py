"""Series of the forecasting comparison, as single-column CSV files (header `y`).

- `taylor.csv`: half-hourly electricity demand in England and Wales (MW), Monday
  5 June to Sunday 27 August 2000, 4032 points, periods 48 (day) and 336 (week).
  Source: Taylor, J.W. (2003), "Short-term electricity demand forecasting using
  double seasonal exponential smoothing", Journal of the Operational Research
  Society 54, 799-805; as shipped by the PyPI package `pmdarima` (MIT licence),
  `pmdarima.datasets.load_taylor()`.
- `hourly.csv`: one year of hourly demand from SP-E's synthetic generator,
  written by the Rust binary (`forecast_compare synth`), not by this module.

Usage: `python data.py taylor OUT.csv` writes the taylor series.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path


def write_series(path: Path, values) -> None:
    """Write `values` as a single-column CSV with header `y` (one float a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["y"])
        for v in values:
            v = float(v)
            if not math.isfinite(v):
                raise ValueError(f"non-finite value in series for {path.name}: {v}")
            w.writerow([repr(v)])
    tmp.replace(path)


def read_series(path: Path) -> list[float]:
    """Read a single-column CSV with header `y`; every value must be finite."""
    with Path(path).open(newline="") as f:
        r = csv.reader(f)
        header = next(r, None)
        if header != ["y"]:
            raise ValueError(f"{path}: expected header 'y', found {header!r}")
        out = []
        for line_no, row in enumerate(r, start=2):
            if len(row) != 1:
                raise ValueError(f"{path}:{line_no}: expected one column, found {len(row)}")
            v = float(row[0])
            if not math.isfinite(v):
                raise ValueError(f"{path}:{line_no}: non-finite value {row[0]!r}")
            out.append(v)
    return out


def load_taylor() -> list[float]:
    """The taylor series from pmdarima (4032 half-hourly points)."""
    from pmdarima.datasets import load_taylor as _load

    y = [float(v) for v in _load()]
    if len(y) != 4032:
        raise ValueError(f"pmdarima's taylor series has {len(y)} points, expected 4032")
    return y


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "taylor":
        print("usage: data.py taylor OUT.csv", file=sys.stderr)
        return 2
    write_series(Path(argv[2]), load_taylor())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
