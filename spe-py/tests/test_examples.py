"""The examples run as documented (each in a fresh interpreter)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_quickstart_forecasts_and_saves_a_chart(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    out = tmp_path / "chart.png"
    result = run("quickstart.py", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8712 hours of synthetic demand" in result.stdout
    assert "auto(" in result.stdout
    if importlib.util.find_spec("matplotlib") is None:
        assert "no chart" in result.stdout
        pytest.skip("matplotlib is not installed: the chart is skipped")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_quickstart_without_matplotlib_still_runs(tmp_path: Path) -> None:
    """A `matplotlib` that cannot be imported: the example says so and succeeds."""
    pytest.importorskip("pandas")
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('blocked for the test')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker))
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--out",
                             str(tmp_path / "none.png")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "pip install 'spe[plot]'" in result.stdout
    assert not (tmp_path / "none.png").exists()


def test_dask_example(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed", reason="dask[distributed] runs this example")
    result = run("dask_forecast_many.py", "--series", "12", "--chunks", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 series forecast on 2 Dask workers" in result.stdout
