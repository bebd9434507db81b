"""spe.WeatherService against a local Open-Meteo look-alike (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import pickle
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import spe

FIXTURE = (Path(__file__).parent / "data" / "paris_72h_last_23_null.json").read_bytes()


def paris_offset(now: dt.datetime) -> dt.timedelta:
    """Paris's UTC offset at ``now``: +2 h from the last Sunday of March to the
    last Sunday of October (at 01:00 UTC), else +1 h (no tz database needed)."""

    def last_sunday(month: int) -> dt.datetime:
        day = dt.datetime(now.year, month, 31, 1, tzinfo=dt.timezone.utc)
        return day - dt.timedelta(days=(day.weekday() + 1) % 7)

    summer = last_sunday(3) <= now < last_sunday(10)
    return dt.timedelta(hours=2 if summer else 1)


def fixture_for_today(query: str) -> tuple[bytes, dt.datetime]:
    """The recorded Paris answer (72 hours from 15 January, at UTC+1, the last
    23 null: past the model's horizon) moved to the days asked for now: from
    local midnight ``past_days`` before today, at most one, so that the
    current hour has values (an answer without is no live data), for the
    grid cell nearest the point asked for (0.1° cells), as Open-Meteo answers.

    Returns the body and the first hour it serves, in UTC.
    """
    body = json.loads(FIXTURE)
    # Open-Meteo writes the zone's offset at the request (the client checks it).
    offset = paris_offset(dt.datetime.now(dt.timezone.utc))
    body["utc_offset_seconds"] = int(offset.total_seconds())
    asked = urllib.parse.parse_qs(query)
    for name in ("latitude", "longitude"):
        body[name] = round(float(asked[name][0]), 1)
    past_days = min(1, int(asked.get("past_days", ["0"])[0]))
    today = (dt.datetime.now(dt.timezone.utc) + offset).date()
    start = dt.datetime.combine(today - dt.timedelta(days=past_days), dt.time())
    hours = len(body["hourly"]["time"])
    body["hourly"]["time"] = [
        (start + dt.timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M") for i in range(hours)
    ]
    return json.dumps(body).encode(), (start - offset).replace(tzinfo=dt.timezone.utc)


class FakeOpenMeteo:
    """A local HTTP server that answers like Open-Meteo, or fails as told.

    ``behaviour`` is ``"ok"`` (the fixture, moved to the days asked for),
    ``"stale"`` (the fixture as recorded, in January), ``"elsewhere"`` (as
    ``"ok"``, but for Lyon whatever the point asked), ``"503"`` (HTTP 503 with
    a non-JSON body) or ``"hang"`` (no answer until the server stops).
    """

    def __init__(self) -> None:
        self.behaviour = "ok"
        self.requests: list[str] = []
        self.served_from: dt.datetime | None = None
        self.release = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                fake.requests.append(self.path)
                if fake.behaviour in ("ok", "stale", "elsewhere"):
                    body = FIXTURE
                    if fake.behaviour != "stale":
                        query = urllib.parse.urlsplit(self.path).query
                        if fake.behaviour == "elsewhere":
                            query = "latitude=45.76&longitude=4.84&" + query
                        body, fake.served_from = fixture_for_today(query)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif fake.behaviour == "503":
                    body = b"<html>503 Service Unavailable</html>"
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    fake.release.wait(30)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[FakeOpenMeteo]:
    fake = FakeOpenMeteo()
    yield fake
    fake.close()


def test_live_weather_from_the_api(upstream: FakeOpenMeteo) -> None:
    service = spe.WeatherService(48.85, 2.35, base_url=upstream.url, timeout_s=2.0)
    assert service.endpoint == f"{upstream.url}/v1/forecast"
    snap = service.fetch()
    assert (snap.mode, snap.provenance, snap.outcome) == ("nominal", "live", "live")
    assert snap.notice is None and snap.degradation is None
    assert len(snap) == 72
    assert upstream.requests[0].startswith("/v1/forecast?latitude=48.85&longitude=2.35")
    a = snap.arrays()
    assert upstream.served_from is not None
    first = np.datetime64(upstream.served_from.replace(tzinfo=None), "ns")
    assert a["time"][0] == first  # local midnight at UTC+1
    assert np.isnan(a["temperature_2m"][-23:]).all()  # nulls past the model's horizon
    assert np.isfinite(a["temperature_2m"][:49]).all()
    assert np.isfinite(a["demand_mw"]).any()
    assert service.mode == "nominal" and service.breaker_state == "closed"


def test_live_frame_carries_provenance_and_mode(upstream: FakeOpenMeteo) -> None:
    pd = pytest.importorskip("pandas")
    snap = spe.WeatherService(base_url=upstream.url).fetch()
    df = snap.frame()
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert df.attrs["mode"] == "nominal" and df.attrs["provenance"] == "live"
    assert list(df.columns)[:4] == ["temperature_2m", "shortwave_radiation", "cloud_cover",
                                    "wind_speed_10m"]


def test_a_stale_answer_is_not_served_as_live(upstream: FakeOpenMeteo) -> None:
    upstream.behaviour = "stale"  # January's forecast, served today
    clock = spe.ManualClock()
    breaker = spe.CircuitBreaker(open_s=30.0, jitter=0.0)
    service = spe.WeatherService(base_url=upstream.url, timeout_s=2.0, breaker=breaker, clock=clock)
    snap = service.fetch()
    assert (snap.mode, snap.provenance) == ("estimation", "synthetic")
    assert "does not include the current hour" in (snap.degradation or ""), snap.degradation
    with pytest.raises(spe.UpstreamError) as info:
        service.fetch_live()
    assert info.value.fault == "upstream" and "stale or misdirected" in str(info.value)
    assert service.breaker_state == "open"  # two upstream failures, as two 503s would
    upstream.behaviour = "ok"
    clock.advance(30)
    assert service.fetch().mode == "nominal"


def test_http_503_switches_to_the_estimate(upstream: FakeOpenMeteo) -> None:
    upstream.behaviour = "503"
    service = spe.WeatherService(base_url=upstream.url, timeout_s=2.0, past_days=1, forecast_days=2)
    snap = service.fetch()
    assert (snap.mode, snap.provenance) == ("estimation", "synthetic")
    assert "HTTP 503" in (snap.degradation or "")
    assert snap.notice is not None and "simulated estimates" in snap.notice
    assert len(snap) == 3 * 24
    assert np.isfinite(snap.arrays()["demand_mw"]).all()
    with pytest.raises(spe.UpstreamError) as info:
        service.fetch_live()
    assert info.value.status == 503 and info.value.fault == "upstream"


def test_an_answer_for_another_place_is_not_live_data(upstream: FakeOpenMeteo) -> None:
    upstream.behaviour = "elsewhere"
    service = spe.WeatherService(48.85, 2.35, base_url=upstream.url, timeout_s=2.0)
    snap = service.fetch()
    assert (snap.mode, snap.provenance) == ("estimation", "synthetic")
    assert "km from" in (snap.degradation or "") and "another place" in (snap.degradation or "")
    with pytest.raises(spe.UpstreamError, match=r"latitude 45.8, longitude 4.8, 386 km from"):
        service.fetch_live()
    upstream.behaviour = "ok"  # the point asked for's cell: live
    fresh = spe.WeatherService(48.85, 2.35, base_url=upstream.url, timeout_s=2.0)
    assert fresh.fetch_live().provenance == "live"


def test_a_hanging_api_times_out_into_the_estimate(upstream: FakeOpenMeteo) -> None:
    upstream.behaviour = "hang"
    service = spe.WeatherService(base_url=upstream.url, timeout_s=0.3)
    snap = service.fetch()
    assert (snap.mode, snap.provenance) == ("estimation", "synthetic")
    assert "0.3" in (snap.outcome or "") or "300ms" in (snap.outcome or ""), snap.outcome
    with pytest.raises(spe.CallTimeoutError) as info:
        service.fetch_live()
    assert isinstance(info.value, TimeoutError)


def test_the_breaker_opens_then_a_probe_brings_it_back(upstream: FakeOpenMeteo) -> None:
    upstream.behaviour = "503"
    clock = spe.ManualClock()
    breaker = spe.CircuitBreaker(open_s=30.0, jitter=0.0)
    service = spe.WeatherService(base_url=upstream.url, timeout_s=2.0, breaker=breaker, clock=clock)
    service.fetch()
    service.fetch()
    assert service.breaker_state == "open"
    before = len(upstream.requests)
    snap = service.fetch()  # refused by the open circuit: the API is not called
    assert snap.outcome == "rejected" and len(upstream.requests) == before
    assert snap.mode == "estimation"
    with pytest.raises(spe.CircuitOpenError) as info:
        service.fetch_live()
    assert info.value.retry_after_s == pytest.approx(30.0)
    upstream.behaviour = "ok"
    clock.advance(30)
    snap = service.fetch()  # the half-open probe succeeds
    assert (snap.mode, snap.provenance, snap.outcome) == ("nominal", "live", "live")
    assert service.breaker_state == "closed"
    assert len(upstream.requests) == before + 1
    assert service.breaker_metrics()["transitions"] == 3  # open, half_open, closed


def test_no_network_at_all_still_serves() -> None:
    service = spe.WeatherService(base_url="http://127.0.0.1:9", timeout_s=1.0)
    assert service.snapshot().mode == "estimation"
    snap = service.fetch()
    assert snap.mode == "estimation" and "connection" in (snap.degradation or "")
    kpis = snap.kpis()
    assert kpis["demand_mw"]["value"] is not None
    # As on the dashboard: an estimate made just now is not fresh data; with
    # no live data ever, its freshness is unknown and critical.
    assert kpis["data_freshness_s"]["value"] is None
    assert kpis["data_freshness_s"]["status"] == "critical"
    assert kpis == spe.compute_kpis(snap.frame(), now=snap.made_at, provenance="synthetic",
                                    last_live_at="never")


def test_outages_are_journaled(upstream: FakeOpenMeteo, tmp_path: Path) -> None:
    journal = spe.Journal(tmp_path / "incidents.journal")
    service = spe.WeatherService(base_url=upstream.url, timeout_s=2.0, journal=journal)
    assert service.fetch().mode == "nominal"
    upstream.behaviour = "503"
    snap = service.fetch()
    assert snap.mode == "estimation" and snap.incident_id is not None
    [incident] = journal.open_incidents()
    assert incident["id"] == snap.incident_id
    assert incident["kind"] == "upstream_5xx" and incident["component"] == "weather"
    assert [(c["from"], c["to"]) for c in incident["mode_changes"]] == [("nominal", "estimation")]


def test_calibrated_generator_makes_the_estimate() -> None:
    gen = spe.SyntheticGenerator(seed=3, params={"demand": {"base_mw": 5000.0}})
    service = spe.WeatherService(base_url="http://127.0.0.1:9", timeout_s=1.0, generator=gen)
    default = spe.WeatherService(base_url="http://127.0.0.1:9", timeout_s=1.0, seed=3)
    big = np.nanmean(service.snapshot().arrays()["demand_mw"])
    normal = np.nanmean(default.snapshot().arrays()["demand_mw"])
    assert big > 3 * normal


def test_bad_settings() -> None:
    with pytest.raises(spe.ConfigError, match="base URL|base_url|absolute"):
        spe.WeatherService(base_url="not a url")
    with pytest.raises(spe.ConfigError, match="timeout_s=0"):
        spe.WeatherService(timeout_s=0)
    with pytest.raises(spe.ConfigError, match="latitude=91"):
        spe.WeatherService(91.0, 0.0)
    with pytest.raises(spe.ConfigError, match="forecast_days"):
        spe.WeatherService(forecast_days=40)
    with pytest.raises(spe.ConfigError, match="past_days=-1 is out of range"):
        spe.WeatherService(past_days=-1)
    with pytest.raises(spe.ConfigError, match="stale_after_s=2 must be more than timeout_s=5"):
        spe.WeatherService(stale_after_s=2.0, timeout_s=5.0)
    # Short staleness is fine with a shorter timeout (there is no refresh loop).
    assert spe.WeatherService(stale_after_s=2.0, timeout_s=1.0).mode == "estimation"


def test_repr_and_pickle(upstream: FakeOpenMeteo) -> None:
    breaker = spe.CircuitBreaker(open_s=5.0)
    service = spe.WeatherService(45.0, 5.0, base_url=upstream.url, timeout_s=1.5, breaker=breaker)
    assert repr(service) == (
        f"WeatherService(latitude=45.0, longitude=5.0, endpoint='{upstream.url}/v1/forecast', "
        "mode='estimation')"
    )
    other = pickle.loads(pickle.dumps(service))
    assert repr(other) == repr(service)
    assert other.fetch().mode == "nominal"
    assert repr(other.snapshot()).startswith("WeatherSnapshot(mode='nominal', provenance='live'")


def test_a_snapshot_pickles_and_copies_with_everything(
    upstream: FakeOpenMeteo, tmp_path: Path
) -> None:
    """A worker process can be handed a snapshot: frames, mode, provenance,
    age, degradation, incident and the refresh's outcome come back equal."""
    import copy

    upstream.behaviour = "503"
    service = spe.WeatherService(
        base_url=upstream.url,
        timeout_s=2.0,
        past_days=1,
        forecast_days=2,
        journal=spe.Journal(tmp_path / "journal"),
    )
    estimated = service.fetch()
    assert estimated.incident_id is not None and estimated.outcome is not None
    upstream.behaviour = "ok"
    live = service.fetch()
    assert live.provenance == "live"
    for original in (estimated, live):
        for other in (
            pickle.loads(pickle.dumps(original)),
            copy.copy(original),
            copy.deepcopy(original),
        ):
            assert type(other) is spe.WeatherSnapshot
            for attr in (
                "mode", "provenance", "age_s", "breaker_state", "made_at", "last_live_at",
                "degradation", "notice", "incident_id", "outcome",
            ):  # fmt: skip
                assert getattr(other, attr) == getattr(original, attr), attr
            assert repr(other) == repr(original)
            assert len(other) == len(original)
            assert other.frame().equals(original.frame())
            assert other.frame().attrs == original.frame().attrs
            for name, values in original.arrays().items():
                np.testing.assert_array_equal(other.arrays()[name], values)
            now = "2026-03-01T12:00:00Z"
            assert other.kpis(now) == original.kpis(now)
    # A damaged state is a clear error, not a panic or a half-built snapshot.
    with pytest.raises(spe.ConfigError, match="not a pickled weather snapshot"):
        spe.WeatherSnapshot._restore("{}", 0)
    state = json.loads(pickle.loads(pickle.dumps(live)).__reduce__()[1][0])
    state["weather"]["columns"] = {}
    with pytest.raises(spe.ConfigError, match="not a pickled weather snapshot"):
        spe.WeatherSnapshot._restore(json.dumps(state), 0)


def test_threads_can_fetch_at_once(upstream: FakeOpenMeteo) -> None:
    service = spe.WeatherService(base_url=upstream.url, timeout_s=2.0)
    modes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        snap = service.fetch()
        with lock:
            modes.append(snap.mode)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert modes == ["nominal"] * 6
    # Overlapping fetches share one request.
    assert 1 <= len(upstream.requests) <= 6
