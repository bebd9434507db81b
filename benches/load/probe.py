#!/usr/bin/env python3
"""Helpers of benches/load/run: a hanging upstream, a timed start, polls and
the restart check. Standard library only; loopback (127.0.0.1) only.

    probe.py hang                          # listen, accept, never answer; prints the port
    probe.py free-port                     # a free loopback port
    probe.py start LOG -- BIN ARGS...      # start BIN detached; wait for /readyz 200
    probe.py wait PORT predictions|incidents   # poll until the server has them
    probe.py save PORT FILE                # the predictions and incidents to compare
    probe.py compare BEFORE AFTER          # exit 1 if they differ
    probe.py parse wrk|oha OUTPUT          # one round's figures as JSON
    probe.py cpu PID                       # the process's CPU time so far, seconds
    probe.py busy                          # the machine's CPU time so far, seconds
    probe.py round TOOL OUTPUT SECONDS SERVER_CPU0 SERVER_CPU1 BUSY0 BUSY1 CLIENT_TIME
                                           # a round's figures, CPU per request, others' load
    probe.py summary ROUNDS                # medians of all rounds and of the quiet ones
    probe.py rounds-table ROUNDS           # the rounds as Markdown table rows
"""

import json
import os
import re
import statistics
import socket
import subprocess
import sys
import time
import http.client

HOST = "127.0.0.1"


def get(port, path, timeout=5.0):
    """GET path: (status, body as text); (None, error) if it cannot connect."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)
    finally:
        conn.close()


def hang():
    """An upstream that accepts connections and never answers."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, 0))
    server.listen(1024)
    print(server.getsockname()[1], flush=True)
    held = []
    while True:
        conn, _ = server.accept()
        held.append(conn)  # kept open, never read nor written


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        print(s.getsockname()[1])


def start(log_path, argv):
    """Start the server detached (its own session, stderr to log_path),
    then poll /readyz as fast as possible. Prints JSON: pid, the time from
    just before exec to the first 200 in ms, and the readiness body."""
    port = int(argv[argv.index("--addr") + 1].rsplit(":", 1)[1])
    with open(log_path, "ab") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    deadline = t0 + 60
    while True:
        if proc.poll() is not None:
            sys.exit(f"the server exited ({proc.returncode}) before it was ready; see {log_path}")
        status, body = get(port, "/readyz", timeout=1.0)
        if status == 200:
            ready_ms = (time.monotonic() - t0) * 1000
            break
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"/readyz not 200 within 60 s (last: {status} {body})")
        time.sleep(0.0005)
    print(json.dumps({"pid": proc.pid, "ready_ms": round(ready_ms, 1), "readyz": json.loads(body)}))


def wait(port, what, limit_s=90):
    """Poll until the server has predictions, or at least one incident."""
    deadline = time.monotonic() + limit_s
    while True:
        if what == "predictions":
            status, _ = get(port, "/api/predictions")
            if status == 200:
                return
        elif what == "incidents":
            status, body = get(port, "/api/incidents")
            if status == 200 and json.loads(body)["incidents"]:
                return
        else:
            sys.exit(f"unknown condition {what}")
        if time.monotonic() > deadline:
            sys.exit(f"no {what} within {limit_s} s")
        time.sleep(0.05)


def save(port, path):
    """What must survive a kill -9: the predictions (made_at, mean, model)
    and the journal's incidents (id, component, kind, start, details)."""
    status, body = get(port, "/api/predictions")
    if status != 200:
        sys.exit(f"GET /api/predictions: {status} {body}")
    p = json.loads(body)
    status, body = get(port, "/api/incidents?limit=1000")
    if status != 200:
        sys.exit(f"GET /api/incidents: {status} {body}")
    incidents = [
        {k: i[k] for k in ("id", "component", "kind", "start", "details")}
        for i in json.loads(body)["incidents"]
    ]
    saved = {
        "predictions": {
            "made_at": p["made_at"],
            "model": p["model"],
            "mean": p["forecast"]["mean"],
        },
        "tier": p["tier"],
        "incidents": incidents,
    }
    with open(path, "w") as f:
        json.dump(saved, f)


def compare(before_path, after_path):
    with open(before_path) as f:
        before = json.load(f)
    with open(after_path) as f:
        after = json.load(f)
    same_predictions = before["predictions"] == after["predictions"]
    same_journal = before["incidents"] == after["incidents"]
    print(json.dumps({
        "same_predictions": same_predictions,
        "same_journal": same_journal,
        "made_at": after["predictions"]["made_at"],
        "steps": len(after["predictions"]["mean"]),
        "tier_before": before["tier"],
        "tier_after": after["tier"],
        "incidents": len(after["incidents"]),
    }))
    if not (same_predictions and same_journal):
        print(json.dumps({"before": before, "after": after}, indent=1), file=sys.stderr)
        sys.exit(1)


def parse(tool, path):
    print(json.dumps(figures_of(tool, path)))


def figures_of(tool, path):
    """One load round: requests, requests per second, p50 and p99 (ms),
    errors (non-2xx answers and socket errors)."""
    text = open(path).read()
    if tool == "wrk":
        def ms(label):
            m = re.search(r"^\s*" + label + r"%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
            value, unit = float(m.group(1)), m.group(2)
            return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
        errors = 0
        m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
        if m:
            errors += int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        if m:
            errors += sum(int(g) for g in m.groups())
        figures = {
            "requests": int(re.search(r"(\d+) requests in", text).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "p50_ms": ms("50"),
            "p99_ms": ms("99"),
            "errors": errors,
        }
    else:
        r = json.loads(text)
        codes = r.get("statusCodeDistribution", {})
        p = r["latencyPercentiles"]
        figures = {
            "requests": sum(codes.values()) + sum(r.get("errorDistribution", {}).values()),
            "rps": r["summary"]["requestsPerSec"],
            "p50_ms": p["p50"] * 1000,
            "p99_ms": p["p99"] * 1000,
            "errors": sum(n for code, n in codes.items() if code != "200")
            + sum(r.get("errorDistribution", {}).values()),
        }
    return figures


def cpu(pid):
    """User + system CPU time of process pid, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    print(ticks / os.sysconf("SC_CLK_TCK"))


def busy():
    """CPU time spent by the whole machine so far (every CPU, not idle),
    seconds."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    print((user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"))


def quiet(rounds):
    """The rounds during which other processes used less than QUIET cores."""
    return [r for r in rounds if r.get("others_cores") is not None and r["others_cores"] < QUIET]


QUIET = 0.15


def summary(path):
    """The median of the rounds, each figure on its own, on one line:
    requests/s, p50 (ms), p99 (ms), server CPU per request (µs), errors
    (all rounds)."""
    rounds = [json.loads(line) for line in open(path) if line.strip()]
    print(medians(rounds), len(quiet(rounds)), medians(quiet(rounds)))


def medians(rounds):
    """requests/s, p50, p99, CPU per request (medians) and errors (sum), on
    one line; dashes without rounds."""
    if not rounds:
        return "- - - - -"
    def median(key):
        return statistics.median(r[key] for r in rounds)
    errors = sum(r["errors"] for r in rounds)
    return (f"{median('rps'):.0f} {median('p50_ms'):.2f} {median('p99_ms'):.2f} "
            f"{median('cpu_us_per_request'):.1f} {errors}")


def rounds_table(path):
    """The rounds as the rows of a Markdown table."""
    for i, r in enumerate((json.loads(line) for line in open(path) if line.strip()), 1):
        others = "?" if r["others_cores"] is None else f"{r['others_cores']:.2f}"
        print(f"| {i} | {others} | {r['rps']:.0f} | {r['p50_ms']:.2f} ms | "
              f"{r['p99_ms']:.2f} ms | {r['cpu_us_per_request']:.1f} µs | {r['errors']} |")


def round_figures(tool, out, seconds, server_cpu0, server_cpu1, busy0, busy1, client_time):
    """One round's figures (see parse) with the server's CPU time per
    request and the cores used by other processes than the server and the
    load generator during the round (None if the generator's CPU time is
    unknown), as JSON."""
    figures = figures_of(tool, out)
    server_s = float(server_cpu1) - float(server_cpu0)
    figures["cpu_us_per_request"] = server_s * 1e6 / max(figures["requests"], 1)
    figures["others_cores"] = None
    try:
        with open(client_time) as f:
            client_s = sum(float(x) for x in f.read().split()[-2:])
        others = float(busy1) - float(busy0) - server_s - client_s
        figures["others_cores"] = max(others, 0.0) / float(seconds)
    except (OSError, ValueError):
        pass
    print(json.dumps(figures))


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    command = args[0]
    if command == "hang":
        hang()
    elif command == "free-port":
        free_port()
    elif command == "start" and len(args) > 3 and args[2] == "--":
        start(args[1], args[3:])
    elif command == "wait" and len(args) == 3:
        wait(int(args[1]), args[2])
    elif command == "save" and len(args) == 3:
        save(int(args[1]), args[2])
    elif command == "compare" and len(args) == 3:
        compare(args[1], args[2])
    elif command == "parse" and len(args) == 3:
        parse(args[1], args[2])
    elif command == "cpu" and len(args) == 2:
        cpu(int(args[1]))
    elif command == "summary" and len(args) == 2:
        summary(args[1])
    elif command == "rounds-table" and len(args) == 2:
        rounds_table(args[1])
    elif command == "round" and len(args) == 9:
        round_figures(*args[1:])
    elif command == "busy" and len(args) == 1:
        busy()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
