"""The package: version, exports, exception hierarchy, shipped type stubs."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
import subprocess
import sys
from pathlib import Path

import pytest

import spe
import spe._spe


def test_version_is_the_crate_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[-.+].+)?", spe.__version__)
    assert spe.__version__ == spe._spe.__version__
    assert spe.__version__ == importlib.metadata.version("spe")
    workspace = Path(__file__).resolve().parents[2] / "Cargo.toml"
    if workspace.is_file():
        section = workspace.read_text(encoding="utf-8").split("[workspace.package]", 1)[1]
        declared = re.search(r'^version\s*=\s*"([^"]+)"', section, re.MULTILINE)
        assert declared is not None
        assert spe.__version__ == declared.group(1)


EXCEPTIONS = [
    "SpeError",
    "ConfigError",
    "ForecastError",
    "ForecastInputError",
    "CircuitOpenError",
    "UpstreamError",
    "CallTimeoutError",
    "CacheError",
    "CacheCorruptError",
    "JournalError",
    "StoreError",
    "StoreCorruptError",
]

CLASSES = [
    "CircuitBreaker",
    "FittedModel",
    "Forecast",
    "HistoryStore",
    "Journal",
    "ManualClock",
    "Model",
    "Prediction",
    "ResilientForecaster",
    "Retex",
    "SyntheticGenerator",
    "WeatherService",
    "WeatherSnapshot",
]

FUNCTIONS = [
    "backtest",
    "calendar_exog",
    "compute_kpis",
    "forecast",
    "forecast_many",
]


def test_public_names() -> None:
    assert sorted(spe.__all__) == sorted(EXCEPTIONS + CLASSES + FUNCTIONS + ["__version__"])
    for name in spe.__all__:
        assert hasattr(spe, name)
    # The compiled module holds the same names (the package wraps some in
    # Python), plus the low-level pieces the wrappers use; Model and
    # FittedModel are Python classes around _fit and _FittedModel.
    low_level = {"_Call", "_fit", "_model_spec", "_FittedModel"}
    assert set(spe._spe.__all__) - set(spe.__all__) == low_level
    assert set(spe.__all__) - {"Model", "FittedModel"} == set(spe._spe.__all__) - low_level


def test_exception_hierarchy() -> None:
    assert issubclass(spe.SpeError, Exception)
    assert not issubclass(spe.SpeError, ValueError)
    assert issubclass(spe.ConfigError, spe.SpeError)
    assert issubclass(spe.ConfigError, ValueError)
    assert issubclass(spe.ForecastError, spe.SpeError)
    assert not issubclass(spe.ForecastError, ValueError)
    assert issubclass(spe.ForecastInputError, spe.ForecastError)
    assert issubclass(spe.ForecastInputError, spe.ConfigError)
    assert issubclass(spe.ForecastInputError, ValueError)
    assert issubclass(spe.CircuitOpenError, spe.SpeError)
    assert issubclass(spe.CallTimeoutError, spe.UpstreamError)
    assert issubclass(spe.CallTimeoutError, TimeoutError)
    assert issubclass(spe.JournalError, OSError)
    assert issubclass(spe.CacheError, spe.SpeError)
    assert issubclass(spe.CacheError, OSError)
    assert issubclass(spe.CacheCorruptError, spe.CacheError)
    assert issubclass(spe.StoreError, OSError)
    assert issubclass(spe.StoreCorruptError, spe.StoreError)
    assert spe.ConfigError is spe._spe.ConfigError
    for name in EXCEPTIONS:
        exc = getattr(spe, name)
        assert exc.__module__ == "spe"
        assert exc.__doc__
        assert exc.__qualname__ == name
        assert getattr(spe._spe, name) is exc


def test_every_class_has_a_repr_and_docs() -> None:
    for name in CLASSES:
        cls = getattr(spe, name)
        assert cls.__doc__, name
        assert "__repr__" in {k for c in cls.__mro__[:-1] for k in vars(c)}, name
    for name in FUNCTIONS:
        assert getattr(spe, name).__doc__, name


def test_exceptions_can_be_raised_caught_and_pickled() -> None:
    import pickle

    with pytest.raises(spe.SpeError, match="boom"):
        raise spe.ConfigError("boom")
    for name in EXCEPTIONS:
        exc = getattr(spe, name)
        err = pickle.loads(pickle.dumps(exc("why and how to fix")))
        assert type(err) is exc
        assert err.args == ("why and how to fix",)


def test_docstrings() -> None:
    assert spe.__doc__ and ">>>" in spe.__doc__
    cls = spe.SyntheticGenerator
    assert cls.__doc__ and ">>>" in cls.__doc__
    for method in (cls.arrays, cls.frame, cls.calibrate):
        assert method.__doc__ and ">>>" in method.__doc__
    for name in FUNCTIONS:
        doc = getattr(spe, name).__doc__
        assert doc and ">>>" in doc, name


def test_typing_files_ship_with_the_package() -> None:
    files = importlib.resources.files("spe")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_spe.pyi").is_file()


def test_stubs_match_the_module(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy checks the stubs (requirements-test.txt)")
    # mypy's cache lives in pytest's cache directory (already ignored by git).
    pytest_cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else tmp_path / "mypy"
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {cache}\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "spe", "--mypy-config-file", str(config)],
        cwd=tmp_path,  # import the installed package, not a source tree
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
