#!/usr/bin/env python3
"""SQL introspection: perdure vs restate-server 1.7.12 on the same workload, in one run.

For each server (fresh data directory, the TypeScript test services over HTTP/1.1 so a sleeping
invocation suspends at once): registers the services, sends N greetings (Greeter/greet/send) and
M one-hour sleeps (Greeter/sleepy/send), waits until the N completed and the M suspended, then
times through `POST /query` (JSON rows, median of --repeat runs):

  - SELECT count(*) FROM sys_invocation
  - SELECT * FROM sys_invocation WHERE id = '<one of the sleepers>'
  - SELECT status, count(*) FROM sys_invocation GROUP BY status
  - SELECT count(*) FROM sys_journal

and reports the server's RSS before and its peak during the queries, and the p50/p99 of an
ingress probe (Greeter/greet) while full scans run back to back. For perdure it also streams
every journal entry through psql (port 9071) and reports how much the RSS grew meanwhile.

  bench/query.py [--completed N] [--suspended M] [--repeat R] [--only perdure|restate]
                 [--perdure-bin PATH] [--restate-bin PATH] [--out FILE]

Needs what bench/run.sh installs (restate-server in the perdure cache, Node 22, the services).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402
import registration  # noqa: E402

PROCS = bench.PROCS
log = bench.log

QUERIES = [
    ("count(*) over sys_invocation", "SELECT count(*) AS n FROM sys_invocation"),
    ("lookup by id", "SELECT * FROM sys_invocation WHERE id = '{id}'"),
    ("group by status", "SELECT status, count(*) AS n FROM sys_invocation GROUP BY status"),
    ("count(*) over sys_journal", "SELECT count(*) AS n FROM sys_journal"),
]


def query(admin: int, sql: str, timeout: float = 300.0) -> tuple[float, list]:
    body = json.dumps({"query": sql}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("POST", "/query", body=body, headers={"content-type": "application/json", "accept": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    ms = (time.perf_counter() - t0) * 1000.0
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{sql}: {resp.status} {raw[:300]!r}")
    return ms, json.loads(raw)["rows"]


def send_many(ingress: int, path: str, body: bytes, n: int, threads: int = 8) -> list[str]:
    """N one-way sends; returns the invocation ids."""
    ids: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ingress, timeout=60)
        mine = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            conn.request("POST", path, body=body, headers={"content-type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status == 202:
                mine.append(json.loads(raw)["invocationId"])
        conn.close()
        with lock:
            ids.extend(mine)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return ids


class RssPeak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, bench.status_kib(self.pid, "VmRSS"))
            time.sleep(0.01)

    def finish(self) -> int:
        self.stop.set()
        self.join()
        return self.peak


def run_server(name: str, args, node: str) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"perdure-query-{name}-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    ingress, admin, node_port = bench.free_ports(3)
    cmd, env = bench.server_command(name, args, data_dir, ingress, admin, node_port)
    env["RUST_LOG"] = "warn"
    out: dict = {"server": name}
    server = None
    try:
        with open(workdir / "server.log", "wb") as lf:
            server = PROCS.spawn(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, cwd=str(workdir))
        bench.wait_for("admin /health", lambda: bench.http_call(admin, "GET", "/health", timeout=1)[0] == 200,
                       timeout=120, proc=server, logfile=workdir / "server.log")
        port = registration.start_services(node, f"{name}-v1", workdir)
        body = json.dumps({"uri": f"http://127.0.0.1:{port}", "use_http_11": True}).encode()
        status, raw = bench.http_call(admin, "POST", "/deployments", body, timeout=30)
        if status not in (200, 201):
            raise RuntimeError(f"registration: {status} {raw[:300]!r}")
        bench.wait_for("ingress", lambda: bench.http_call(ingress, "POST", "/Greeter/greet", b'"x"', timeout=10)[0] == 200,
                       timeout=60, interval=0.5, proc=server)
        t0 = time.monotonic()
        send_many(ingress, "/Greeter/greet/send", b'"bench"', args.completed)
        sleepers = send_many(ingress, "/Greeter/sleepy/send", b"3600000", args.suspended)
        log(f"{name}: {args.completed} greets and {len(sleepers)} sleeps sent in {time.monotonic() - t0:.0f}s")

        def settled() -> bool:
            _, rows = query(admin, "SELECT status, count(*) AS n FROM sys_invocation GROUP BY status")
            counts = {r["status"]: r["n"] for r in rows}
            return counts.get("completed", 0) >= args.completed + 1 and counts.get("suspended", 0) >= len(sleepers)

        bench.wait_for("the work to complete and suspend", settled, timeout=3600, interval=2.0, proc=server)
        log(f"{name}: settled after {time.monotonic() - t0:.0f}s")
        time.sleep(2.0)
        rss_before = bench.status_kib(server.pid, "VmRSS")
        peak = RssPeak(server.pid)
        peak.start()
        timings = {}
        for label, sql in QUERIES:
            sql = sql.format(id=sleepers[len(sleepers) // 2])
            runs = []
            for _ in range(args.repeat):
                ms, rows = query(admin, sql)
                runs.append(ms)
            timings[label] = {"median_ms": statistics.median(runs), "min_ms": min(runs), "rows": len(rows),
                              "first": rows[0] if rows else None}
            log(f"{name}: {label}: {statistics.median(runs):.1f} ms (min {min(runs):.1f}) -> {rows[:1]}")
        out["queries"] = timings
        out["rss_before_mib"] = rss_before / 1024
        out["rss_peak_during_queries_mib"] = peak.finish() / 1024

        # The ingress while full scans run back to back.
        probe = registration.Probe(ingress)
        probe.start()
        time.sleep(2.0)
        idle = list(probe.latencies)
        stop = time.monotonic() + args.scan_seconds
        scans = 0
        while time.monotonic() < stop:
            query(admin, "SELECT * FROM sys_invocation")
            scans += 1
        during = probe.latencies[len(idle):]
        probe.stop.set()
        probe.join()
        pct = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else None  # noqa: E731
        out["probe"] = {"idle_p50_ms": pct(idle, 0.5), "idle_p99_ms": pct(idle, 0.99),
                        "scan_p50_ms": pct(during, 0.5), "scan_p99_ms": pct(during, 0.99),
                        "full_scans": scans, "errors": probe.errors}
        log(f"{name}: probe idle p99 {out['probe']['idle_p99_ms']:.2f} ms, during {scans} full scans "
            f"p99 {out['probe']['scan_p99_ms']:.2f} ms")

        if name == "perdure" and shutil.which("psql"):
            pg = node_port
            peak = RssPeak(server.pid)
            before = bench.status_kib(server.pid, "VmRSS")
            peak.start()
            t1 = time.perf_counter()
            done = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(pg), "-U", "bench", "-c",
                                   "SELECT * FROM sys_journal"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            secs = time.perf_counter() - t1
            top = peak.finish()
            lines = done.stdout.count(b"\n")
            out["psql_stream"] = {"rows": lines, "seconds": secs, "rss_growth_mib": (top - before) / 1024,
                                  "ok": done.returncode == 0}
            log(f"{name}: psql streamed {lines} journal rows in {secs:.1f}s, RSS +{(top - before) / 1024:.0f} MiB")
    finally:
        if server is not None:
            PROCS.stop(server, grace=30.0)
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--completed", type=int, default=100_000)
    ap.add_argument("--suspended", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scan-seconds", type=float, default=10.0)
    ap.add_argument("--only", choices=["perdure", "restate"])
    ap.add_argument("--perdure-bin", default=os.environ.get("PERDURE_BIN", ""))
    cache = Path(os.environ.get("PERDURE_CACHE", Path.home() / ".cache" / "perdure"))
    ap.add_argument("--restate-bin", default=str(cache / "restate-1.7.12" / "node_modules" / "@restatedev" /
                                                 "restate-server-linux-x64" / "bin" / "restate-server"))
    ap.add_argument("--out", default=str(HERE / "out" / "query.json"))
    args = ap.parse_args()
    if not args.perdure_bin:
        target = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                                                    cwd=REPO))["target_directory"]
        args.perdure_bin = str(Path(target) / "release" / "perdure")
    node = subprocess.check_output([str(REPO / "scripts" / "setup-node.sh"), "--print-node"], text=True).split()[-1]
    results = {}
    for name in ("restate", "perdure"):
        if args.only and args.only != name:
            continue
        results[name] = run_server(name, args, node)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))

    print(f"\n{args.completed:,} completed + {args.suspended:,} suspended invocations, POST /query, median of {args.repeat}\n")
    names = list(results)
    print("| | " + " | ".join(names) + (" | perdure / restate |" if len(names) == 2 else " |"))
    print("|---|" + "---|" * len(names) + ("---|" if len(names) == 2 else ""))
    for label, _ in QUERIES:
        vals = [results[n]["queries"][label]["median_ms"] for n in names]
        ratio = f" {vals[1] / vals[0]:.2f}x |" if len(vals) == 2 and vals[0] else ""
        print(f"| {label} (ms) | " + " | ".join(f"{v:.1f}" for v in vals) + " |" + ratio)
    for key, label in (("rss_before_mib", "server RSS before (MiB)"), ("rss_peak_during_queries_mib", "server RSS peak during the queries (MiB)")):
        vals = [results[n][key] for n in names]
        ratio = f" {vals[1] / vals[0]:.2f}x |" if len(vals) == 2 and vals[0] else ""
        print(f"| {label} | " + " | ".join(f"{v:.0f}" for v in vals) + " |" + ratio)
    for key, label in (("idle_p99_ms", "ingress p99 idle (ms)"), ("scan_p99_ms", "ingress p99 during full scans (ms)")):
        vals = [results[n]["probe"][key] for n in names]
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in vals) + " |" + (" |" if len(vals) == 2 else ""))
    if "perdure" in results and "psql_stream" in results["perdure"]:
        s = results["perdure"]["psql_stream"]
        print(f"\nperdure, psql: {s['rows']:,} journal rows streamed in {s['seconds']:.1f}s, server RSS +{s['rss_growth_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
