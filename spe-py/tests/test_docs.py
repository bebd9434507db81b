"""The examples in the docstrings run and print what they say."""

from __future__ import annotations

import doctest

import pytest

import spe
import spe._spe
import spe._synthetic

# Every public object whose docstring has examples; each example runs.
DOCUMENTED = {
    "spe": spe,
    "spe.SyntheticGenerator": spe.SyntheticGenerator,
    "spe.SyntheticGenerator.frame": spe.SyntheticGenerator.frame,
    "spe.SyntheticGenerator.calibrate": spe.SyntheticGenerator.calibrate,
    "spe._spe.SyntheticGenerator": spe._spe.SyntheticGenerator,
    "spe._spe.SyntheticGenerator.arrays": spe._spe.SyntheticGenerator.arrays,
    "spe.forecast": spe.forecast,
    "spe.forecast_many": spe.forecast_many,
    "spe.backtest": spe.backtest,
    "spe.calendar_exog": spe.calendar_exog,
    "spe.compute_kpis": spe.compute_kpis,
    "spe.Forecast": spe.Forecast,
    "spe.CircuitBreaker": spe.CircuitBreaker,
    "spe.CircuitBreaker.acall": spe.CircuitBreaker.acall,
    "spe.ManualClock": spe.ManualClock,
    "spe.Journal": spe.Journal,
    "spe.HistoryStore": spe.HistoryStore,
    "spe.WeatherService": spe.WeatherService,
    "spe.ResilientForecaster": spe.ResilientForecaster,
    "spe.Model": spe.Model,
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_docstring_examples(name: str) -> None:
    pytest.importorskip("pandas")
    doc = DOCUMENTED[name].__doc__
    assert doc, f"{name} has no docstring"
    test = doctest.DocTestParser().get_doctest(doc, {}, name, None, 0)
    assert test.examples, f"{name} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) of {name} failed (see output above)"
