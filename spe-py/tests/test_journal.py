"""spe.Journal and spe.Retex: incidents on disk, the RETEX report."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from processes import another_process_holding

import spe

T0 = "2026-03-01T08:00:00Z"


def test_incidents_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "incidents.journal"
    journal = spe.Journal(path)
    assert journal.open_report["created"] is True
    a = journal.open_incident("open-meteo", "upstream_timeout", "5 s", at=T0)
    journal.mode_changed(a, "nominal", "estimation", at=T0)
    journal.note(a, "also HTTP 503 twice", at="2026-03-01T08:10:00Z")
    closed = journal.close_incident(a, "probe ok", at="2026-03-01T09:00:00Z")
    b = journal.open_incident("prediction-engine", "model_crash", "exit 1", at="2026-03-01T10:00:00Z")
    assert (a, b) == (1, 2)
    assert closed["duration_s"] == 3600.0 and closed["resolution"] == "probe ok"
    del journal
    # Another process reads what this one wrote (and fsynced).
    code = (
        "import spe, sys; j = spe.Journal(sys.argv[1]); "
        "print([(i['id'], i['kind'], i['is_open']) for i in j.incidents()])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[(2, 'model_crash', True), (1, 'upstream_timeout', False)]"
    again = spe.Journal(path)
    assert again.open_report["created"] is False and again.open_report["records_read"] == 5
    first = again.incident(1)
    assert first is not None
    assert first["start"] == datetime(2026, 3, 1, 8, tzinfo=timezone.utc)
    assert first["mode_changes"] == [
        {"at": datetime(2026, 3, 1, 8, tzinfo=timezone.utc), "from": "nominal", "to": "estimation"}
    ]
    assert first["notes"] == [(datetime(2026, 3, 1, 8, 10, tzinfo=timezone.utc), "also HTTP 503 twice")]
    assert [i["id"] for i in again.open_incidents()] == [2]
    assert again.incident(99) is None
    assert [i["id"] for i in again.incidents(start="2026-03-01T09:30:00Z")] == [2]
    assert [i["id"] for i in again.incidents(end="2026-03-01T08:30:00Z")] == [1]


def test_a_journal_open_in_another_process_is_refused_and_left_whole(tmp_path: Path) -> None:
    path = tmp_path / "incidents.journal"
    # The other process opens the journal, records, and holds it.
    opens = (
        "import spe; j = spe.Journal(sys.argv[1]); "
        "j.open_incident('open-meteo', 'upstream_timeout', 'theirs', at='2026-03-01T08:00:00Z')"
    )
    with another_process_holding(opens, str(path)):
        with pytest.raises(spe.JournalError, match="open in another process") as info:
            spe.Journal(path)
        assert isinstance(info.value, OSError)
    # Its lock went with it; its record is there.
    journal = spe.Journal(path)
    assert [(i["id"], i["details"]) for i in journal.incidents()] == [(1, "theirs")]


def test_retex_figures_and_markdown(tmp_path: Path) -> None:
    journal = spe.Journal(tmp_path / "j")
    a = journal.open_incident("open-meteo", "upstream_timeout", at="2026-01-01T10:00:00Z")
    journal.close_incident(a, at="2026-01-01T11:00:00Z")
    b = journal.open_incident("open-meteo", "upstream_5xx", at="2026-01-01T10:30:00Z")
    journal.close_incident(b, at="2026-01-01T12:30:00Z")
    r = journal.retex("2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z", now="2026-01-11T00:00:00Z")
    assert r.incident_count == 2
    assert r.downtime_s == 150 * 60  # 1 h and 2 h overlapping by 30 min
    assert r.availability_percent == pytest.approx(100 * (1 - 9000 / 864000))
    assert r.mttr_s == 90 * 60
    d = r.to_dict()
    assert d["longest_outage"]["id"] == b
    assert d["by_kind"] == {"upstream_timeout": 1, "upstream_5xx": 1}
    assert d["by_component"]["open-meteo"]["incidents"] == 2
    assert [i["id"] for i in d["incidents"]] == [b, a]
    md = r.to_markdown()
    assert md.startswith("# RETEX") and "| Availability | 98.958 % |" in md
    assert repr(r).startswith("Retex(period_start='2026-01-01T00:00:00+00:00'")
    # It pickles as it is: a later incident does not change the copy.
    copies = [pickle.loads(pickle.dumps(r)), copy.copy(r), copy.deepcopy(r)]
    journal.open_incident("cache", "cache_corrupt", at="2026-01-02T00:00:00Z")
    for other in copies:
        assert type(other) is spe.Retex
        assert other == r and other.to_dict() == d and other.to_markdown() == md
    assert r != journal.retex(
        "2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z", now="2026-01-11T00:00:00Z"
    )
    assert r != d
    with pytest.raises(TypeError):
        hash(r)
    with pytest.raises(spe.ConfigError, match="not a pickled review"):
        spe.Retex._restore('{"period_start": 1}')
    empty = spe.Journal(tmp_path / "empty").retex()
    assert empty.availability_percent == 100.0 and empty.mttr_s is None


def test_errors(tmp_path: Path) -> None:
    journal = spe.Journal(tmp_path / "j")
    with pytest.raises(spe.JournalError, match="already open in this process"):
        spe.Journal(tmp_path / "j")
    not_a_journal = tmp_path / "notes.txt"
    not_a_journal.write_text("hello")
    with pytest.raises(spe.JournalError, match="not an SP-E incident journal") as info:
        spe.Journal(not_a_journal)
    assert isinstance(info.value, OSError)
    assert not_a_journal.read_text() == "hello"  # left untouched
    with pytest.raises(spe.ConfigError, match="not an incident kind"):
        journal.open_incident("x", "meteor")
    with pytest.raises(spe.ConfigError, match="not a mode"):
        journal.mode_changed(1, "nominal", "panic")
    with pytest.raises(spe.JournalError, match="unknown incident #7"):
        journal.close_incident(7)
    i = journal.open_incident("x", "other")
    journal.close_incident(i)
    with pytest.raises(spe.JournalError, match="already closed"):
        journal.close_incident(i)
    with pytest.raises(spe.ConfigError, match="no UTC offset"):
        journal.open_incident("x", "other", at="2026-01-01T00:00:00")
    with pytest.raises(spe.ConfigError, match="after end"):
        journal.retex("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z")
    later = journal.open_incident("x", "other", at="2026-03-01T00:00:00Z")
    with pytest.raises(spe.ConfigError, match="cannot end at 2026-02-01T00:00:00Z, before it"):
        journal.close_incident(later, at="2026-02-01T00:00:00Z")
    with pytest.raises(spe.ConfigError, match="cannot change mode"):
        journal.mode_changed(later, "nominal", "estimation", at="2026-02-01T00:00:00Z")
    assert journal.incident(later)["end"] is None  # nothing was recorded
    with pytest.raises(spe.ConfigError, match="id=-1 is out of range"):
        journal.incident(-1)


def test_torn_tail_is_saved_then_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = spe.Journal(path)
    journal.open_incident("x", "other", "kept")
    del journal
    size = path.stat().st_size
    # The start of a record cut short by a crash: the frame's magic and a
    # length running past the end of the file.
    torn = b"\xe5\x4a\x52\x1d\x40\x00\x00\x00 half"
    with path.open("ab") as f:
        f.write(torn)
    again = spe.Journal(path)
    report = again.open_report
    assert report["torn_tail_bytes"] == len(torn)
    assert report["corrupt_regions"] == []
    assert Path(report["torn_tail_saved_to"]).read_bytes() == torn
    assert path.stat().st_size == size
    assert [i["details"] for i in again.incidents()] == ["kept"]


def test_damage_at_the_end_is_kept_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = spe.Journal(path)
    journal.open_incident("x", "other", "kept")
    del journal
    garbage = b"\x00\x01\x02 not a record"
    with path.open("ab") as f:
        f.write(garbage)
    size = path.stat().st_size
    again = spe.Journal(path)
    report = again.open_report
    assert report["torn_tail_bytes"] == 0
    assert report["torn_tail_saved_to"] is None
    assert len(report["corrupt_regions"]) == 1
    assert path.stat().st_size == size  # nothing destroyed
    again.open_incident("y", "other", "after the damage")
    del again
    assert [i["details"] for i in spe.Journal(path).incidents()] == ["after the damage", "kept"]


def test_a_header_with_a_flipped_bit_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "incidents.journal"
    journal = spe.Journal(path)
    journal.open_incident("x", "other", "kept")
    del journal
    sound = path.read_bytes()
    damaged = bytearray(sound)
    damaged[1] ^= 0x04
    path.write_bytes(bytes(damaged))
    again = spe.Journal(path)
    report = again.open_report
    assert Path(report["damaged_header_saved_to"]).read_bytes() == bytes(damaged[:12])
    assert [i["details"] for i in again.incidents()] == ["kept"]
    del again
    assert path.read_bytes() == sound
    assert spe.Journal(path).open_report["damaged_header_saved_to"] is None


def test_repr_and_pickle(tmp_path: Path) -> None:
    journal = spe.Journal(tmp_path / "j")
    assert repr(journal) == f"Journal({str(tmp_path / 'j')!r})"
    assert journal.path == tmp_path / "j"
    data = pickle.dumps(journal)
    code = "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read()).path)"
    del journal  # one open journal per process: unpickle after closing
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True)
    assert out.stdout.decode().strip() == str(tmp_path / "j")


def test_unpickling_or_copying_in_the_same_process_shares_the_open_journal(
    tmp_path: Path,
) -> None:
    journal = spe.Journal(tmp_path / "j")
    copies = [pickle.loads(pickle.dumps(journal)), copy.deepcopy(journal), copy.copy(journal)]
    first = journal.open_incident("weather_api", "upstream_timeout", "no answer")
    for other in copies:
        assert other.path == journal.path
        # One journal: what one handle writes, the others read.
        assert [i["id"] for i in other.open_incidents()] == [first]
    copies[0].close_incident(first, "back")
    assert journal.open_incidents() == []
    # Another spelling of the path finds the same journal.
    (tmp_path / "sub").mkdir()
    same = spe.Journal._reopen(tmp_path / "sub" / ".." / "j")  # type: ignore[attr-defined]
    assert same.incident(first) is not None
    # The handle pickled first gone, the copies keep the journal open and shareable.
    del journal
    again = pickle.loads(pickle.dumps(copies[2]))
    assert again.incident(first) is not None
    # Opening it directly is still refused while a handle is alive.
    with pytest.raises(spe.JournalError, match="already open in this process"):
        spe.Journal(tmp_path / "j")
    del copies, same, again, other
    # Every handle gone: the journal is closed, and opens again.
    assert spe.Journal(tmp_path / "j").incident(first) is not None
