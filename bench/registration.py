#!/usr/bin/env python3
"""Registration with a large backlog in flight (perdure only).

Starts perdure (release) and the TypeScript test services twice (v1, v2; HTTP/1.1
request/response, so a sleeping invocation suspends at once and costs no open stream), registers
v1, sends N long sleeps (Greeter/sleepy, 1 hour), waits until all N are pinned to v1 and
suspended, then, while a probe keeps calling Greeter/greet through the ingress, times:

  - POST /deployments v2 as a dry run and for real (discovery + compatibility checks against what
    is in flight, read from the per-deployment counters: O(partitions), not O(invocations)),
  - GET /deployments/{v1} (the drain status with N pinned),
  - DELETE /deployments/{v1} without force (refused: 409 with counts and 20 ids),

and reports each, the probe's worst latency meanwhile, and the server's RSS. Target (issue 12):
registration under 1 s with 100,000 in flight, never blocking the ingress.

  bench/registration.py [--invocations N] [--perdure-bin PATH] [--keep]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
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
import bench  # noqa: E402  (the load benchmark's process and HTTP helpers)

PROCS = bench.PROCS
log = bench.log


def start_services(node: str, tag: str, workdir: Path) -> int:
    services = REPO / "tests" / "services" / "ts" / "services.mjs"
    errlog = open(workdir / f"services-{tag}.log", "wb")
    p = PROCS.spawn([node, str(services), "0", "h1", tag], cwd=str(services.parent),
                    env=dict(os.environ, RESTATE_LOGGING="WARN"), stdout=subprocess.PIPE, stderr=errlog)
    errlog.close()
    line = p.stdout.readline().decode().strip()
    if not line.startswith("listening "):
        raise RuntimeError(f"services {tag} did not start: {line!r}")
    return int(line.split()[1])


def timed(port: int, method: str, path: str, body: dict | None = None, timeout: float = 120.0):
    raw = json.dumps(body).encode() if body is not None else None
    t0 = time.perf_counter()
    status, out = bench.http_call(port, method, path, raw, timeout=timeout)
    return (time.perf_counter() - t0) * 1000.0, status, out


def send_all(ingress: int, n: int, threads: int = 8) -> int:
    """N sends of a 1 h sleep over keep-alive connections; returns how many were accepted."""
    work: queue.Queue[int] = queue.Queue()
    for i in range(n):
        work.put(i)
    accepted = [0] * threads

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ingress, timeout=30)
        while True:
            try:
                work.get_nowait()
            except queue.Empty:
                break
            conn.request("POST", "/Greeter/sleepy/send", body=b"3600000",
                         headers={"content-type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 202:
                accepted[k] += 1
        conn.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(accepted)


class Probe(threading.Thread):
    """Calls Greeter/greet in a loop and records each latency (ms)."""

    def __init__(self, ingress: int) -> None:
        super().__init__(daemon=True)
        self.ingress = ingress
        self.latencies: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.ingress, timeout=30)
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/Greeter/greet", body=b'"probe"', headers={"content-type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn = http.client.HTTPConnection("127.0.0.1", self.ingress, timeout=30)
            self.latencies.append((time.perf_counter() - t0) * 1000.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--invocations", type=int, default=100_000)
    ap.add_argument("--perdure-bin", default=os.environ.get("PERDURE_BIN", ""))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not args.perdure_bin:
        target = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                                                    cwd=REPO))["target_directory"]
        args.perdure_bin = str(Path(target) / "release" / "perdure")
    node = subprocess.check_output([str(REPO / "scripts" / "setup-node.sh"), "--print-node"], text=True).split()[-1]
    workdir = Path(tempfile.mkdtemp(prefix="perdure-registration-"))
    ingress, admin = bench.free_ports(2)
    env = dict(os.environ, PERDURE_INGRESS__BIND_ADDRESS=f"127.0.0.1:{ingress}",
               PERDURE_ADMIN__BIND_ADDRESS=f"127.0.0.1:{admin}",
               PERDURE_PG__BIND_ADDRESS="127.0.0.1:0",
               PERDURE_NODE__BIND_ADDRESS="127.0.0.1:0", RUST_LOG="warn")
    serverlog = open(workdir / "server.log", "wb")
    server = PROCS.spawn([args.perdure_bin, "serve", "--data-dir", str(workdir / "data")],
                         env=env, stdout=serverlog, stderr=subprocess.STDOUT)
    try:
        bench.wait_for("perdure", lambda: bench.http_call(admin, "GET", "/health")[0] == 200, 30, proc=server,
                       logfile=workdir / "server.log")
        v1, v2 = start_services(node, "v1", workdir), start_services(node, "v2", workdir)
        _, status, out = timed(admin, "POST", "/deployments", {"uri": f"http://127.0.0.1:{v1}", "use_http_11": True})
        assert status == 201, out
        dp1 = json.loads(out)["id"]

        t0 = time.monotonic()
        accepted = send_all(ingress, args.invocations)
        log(f"{accepted} sends accepted in {time.monotonic() - t0:.1f}s; waiting until all are pinned")

        def pinned() -> int:
            return json.loads(bench.http_call(admin, "GET", f"/deployments/{dp1}")[1])["pinned_invocations"]["suspended"]

        last = [0, time.monotonic()]

        def all_pinned() -> bool:
            n = pinned()
            if time.monotonic() - last[1] > 10:
                log(f"{n} suspended on v1")
                last[1] = time.monotonic()
            return n >= accepted

        bench.wait_for("every invocation to be pinned and suspended", all_pinned, 1800, interval=0.5, proc=server)
        log(f"{accepted} invocations suspended on {dp1} after {time.monotonic() - t0:.1f}s")

        probe = Probe(ingress)
        probe.start()
        time.sleep(1.0)
        before = list(probe.latencies)
        dry_ms, status, out = timed(admin, "POST", "/deployments",
                                    {"uri": f"http://127.0.0.1:{v2}", "use_http_11": True, "dry_run": True})
        assert status == 201, out
        reg_ms, status, out = timed(admin, "POST", "/deployments", {"uri": f"http://127.0.0.1:{v2}", "use_http_11": True})
        assert status == 201, out
        dp2 = json.loads(out)["id"]
        get_ms, status, out = timed(admin, "GET", f"/deployments/{dp1}")
        drain = json.loads(out)
        del_ms, del_status, out = timed(admin, "DELETE", f"/deployments/{dp1}")
        during = probe.latencies[len(before):]
        time.sleep(0.5)
        probe.stop.set()
        probe.join()
        rss = bench.status_kib(server.pid, "VmRSS") / 1024.0
        hwm = bench.status_kib(server.pid, "VmHWM") / 1024.0
        # Untimed: the greet probe goes to v2 now.
        assert json.loads(bench.http_call(admin, "GET", "/services/Greeter")[1])["deployment_id"] == dp2

        rows = [
            ("invocations in flight (pinned to v1, suspended)", f"{accepted:,}"),
            ("POST /deployments v2, dry_run (ms)", f"{dry_ms:.1f}"),
            ("POST /deployments v2 (ms)", f"{reg_ms:.1f}"),
            ("GET /deployments/{v1}: drain status (ms)", f"{get_ms:.1f}"),
            ("DELETE /deployments/{v1}: refused, " + str(del_status) + " (ms)", f"{del_ms:.1f}"),
            ("v1 drain status after v2", f"{drain['drain_status']}, {drain['pinned_invocations']['total']:,} pinned"),
            ("ingress greet probe before: p50 / max (ms)",
             f"{statistics.median(before):.2f} / {max(before):.2f}" if before else "-"),
            ("ingress greet probe during the admin calls: p50 / max (ms)",
             f"{statistics.median(during):.2f} / {max(during):.2f} ({len(during)} calls, {probe.errors} errors)"
             if during else "-"),
            ("server RSS now / peak (MiB)", f"{rss:.0f} / {hwm:.0f}"),
        ]
        print("| measure | value |\n|---|---:|")
        for k, v in rows:
            print(f"| {k} | {v} |")
        return 0
    finally:
        PROCS.stop_all()
        serverlog.close()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(workdir)])
        else:
            log(f"kept {workdir}")


if __name__ == "__main__":
    sys.exit(main())
