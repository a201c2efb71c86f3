#!/usr/bin/env python3
"""Overload: memory, shedding and admin latency on a server's worst day (the hardening issue).

Three scenarios, each on a fresh data dir and fresh services, for each server in turn:

  burst        wrk at 64 connections posting `Greeter/sleepy/send` (a 20 s durable sleep) for
               --burst-seconds (services: --burst-sdk): far more work than runs at once. Sends accepted and shed (503),
               their rates, the server's peak RSS. Meanwhile and for --after-seconds after it, a
               probe calls `Greeter/greet` every 100 ms, one call at a time, and waits for each
               answer (up to 60 s): its p50 / p99 / max latency during and after the burst, and
               the first call's after it (a waiting caller must not queue behind the backlog).
               After the burst, the backlog's drain: sends still not completed, polled in
               `sys_invocation` until none is left (or --drain-timeout), as a rate.
  connections  wrk holding --connections open connections, each calling `Greeter/sleepy`
               (--slow-ms) and waiting for its result, for --connections-seconds. Calls answered,
               shed and timed out, peak RSS.
  backlog      `Counter/<key>/add/send` (1000 keys) until --backlog sends are accepted, then
               the wait until every one has run. On perdure the deployment is paused while
               sending (`POST /deployments/{id}/pause`), so all of them are pending at once (a
               real backlog, not one that drains as fast as it fills); then it is resumed. The
               server's own count of stored invocations when sending stopped must equal the
               counters' sum at the end (each ran exactly once; wrk's count of answered sends
               is lower by the requests it cut off when each 5 s run ended). Peak RSS while
               sending and while draining, time to drain.

During every scenario a prober GETs the admin `/health` (a new connection each time, every
50 ms) and reports its p50 / p99 / max latency and failures.

  bench/overload.py [--only perdure|restate] [--scenarios burst,connections,backlog]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/root/.cache/perdure/target"))
CACHE = Path(os.environ.get("PERDURE_CACHE", Path.home() / ".cache/perdure"))
COUNTER_KEYS = 1000


class HealthProber(threading.Thread):
    """GETs the admin `/health` every `interval` seconds on a fresh connection."""

    def __init__(self, port: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.is_set():
            t0 = time.monotonic()
            try:
                status, _ = bench.http_call(self.port, "GET", "/health", timeout=5)
                if status == 200:
                    self.latencies_ms.append((time.monotonic() - t0) * 1000)
                else:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
            self._stop_evt.wait(self.interval)

    def finish(self) -> dict:
        self._stop_evt.set()
        self.join()
        lat = sorted(self.latencies_ms)
        pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None  # noqa: E731
        return {"health_probes": len(lat), "health_failures": self.failures,
                "health_p50_ms": pick(0.50), "health_p99_ms": pick(0.99), "health_max_ms": round(lat[-1], 2) if lat else None}


class CallProber(threading.Thread):
    """Calls `Greeter/greet` on the ingress every `interval` seconds, one call at a time (the next
    starts once the last answered, or after `interval`), and records each call's latency in the
    phase it started in."""

    def __init__(self, port: int, interval: float = 0.1, timeout: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.port, self.interval, self.timeout = port, interval, timeout
        self.phase = "during"
        self.latencies_ms: dict[str, list[float]] = {"during": [], "after": []}
        self.failures: dict[str, int] = {"during": 0, "after": 0}
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.is_set():
            phase, t0 = self.phase, time.monotonic()
            try:
                status, _ = bench.http_call(self.port, "POST", "/Greeter/greet", b'"probe"', timeout=self.timeout)
                if status == 200:
                    self.latencies_ms[phase].append((time.monotonic() - t0) * 1000)
                else:
                    self.failures[phase] += 1
            except (OSError, http.client.HTTPException):
                self.failures[phase] += 1
            self._stop_evt.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def finish(self) -> dict:
        self._stop_evt.set()
        self.join()
        out = {}
        for phase, lat in self.latencies_ms.items():
            first = lat[0] if lat else None
            lat = sorted(lat)
            pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None  # noqa: E731
            out.update({f"probe_{phase}_calls": len(lat), f"probe_{phase}_failures": self.failures[phase],
                        f"probe_{phase}_p50_ms": pick(0.50), f"probe_{phase}_p99_ms": pick(0.99),
                        f"probe_{phase}_max_ms": round(lat[-1], 1) if lat else None})
            if phase == "after":
                out["probe_first_after_ms"] = round(first, 1) if first is not None else None
        return out


def wrk(args, port: int, script: str, conns: int, seconds: int, timeout_s: int, env: dict | None = None,
        extra: list[str] | None = None) -> dict:
    cmd = [args.wrk, "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", f"{timeout_s}s", "--latency",
           "-s", str(HERE / "wrk" / script), f"http://127.0.0.1:{port}"] + (["--"] + extra if extra else [])
    p = bench.PROCS.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, **(env or {})))
    try:
        out, _ = p.communicate(timeout=seconds + timeout_s + 60)
    finally:
        bench.PROCS.stop(p, grace=2.0)
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            res = json.loads(line[len("BENCH_JSON "):])
            errs = res["errors"]
            # wrk counts a non-2xx answer as a "status" error: here, 503s (shed requests).
            res["ok"] = max(0, res["requests"] - errs["status"])
            res["shed"] = errs["status"]
            res["seconds"] = res["duration_us"] / 1e6
            return res
    raise RuntimeError(f"wrk gave no summary (exit {p.returncode}):\n{out}")


def query(admin: int, sql: str, timeout: float = 120) -> list[dict]:
    conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=timeout)
    try:
        conn.request("POST", "/query", body=json.dumps({"query": sql}),
                     headers={"content-type": "application/json", "accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"query {sql!r}: {resp.status} {body[:300]!r}")
        return json.loads(body)["rows"]
    finally:
        conn.close()


def counters_sum(admin: int) -> int:
    rows = query(admin, "SELECT value_utf8 FROM state WHERE service_name = 'Counter' AND key = 'count'")
    return sum(int(r["value_utf8"]) for r in rows if r.get("value_utf8"))


class Server:
    """One server with its services registered, on a fresh data dir."""

    def __init__(self, name: str, args, sdk: str) -> None:
        self.name, self.args = name, args
        self.workdir = Path(tempfile.mkdtemp(prefix=f"perdure-overload-{name}-"))
        (self.workdir / "data").mkdir()
        self.ingress, self.admin, node = bench.free_ports(3)
        cmd, env = bench.server_command(name, args, self.workdir / "data", self.ingress, self.admin, node)
        logfile = self.workdir / "server.log"
        with open(logfile, "wb") as lf:
            self.proc = bench.PROCS.spawn(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, cwd=str(self.workdir))
        bench.wait_for("admin /health", lambda: bench.http_call(self.admin, "GET", "/health", timeout=1)[0] == 200,
                       timeout=120, proc=self.proc, logfile=logfile)
        args.sdk = sdk
        _, port = bench.start_services(args, self.workdir)
        status, out = bench.http_call(self.admin, "POST", "/deployments",
                                      json.dumps({"uri": f"http://127.0.0.1:{port}"}).encode(), timeout=30)
        if status not in (200, 201):
            raise RuntimeError(f"register: {status} {out[:300]!r}")
        self.deployment = json.loads(out)["id"]
        time.sleep(1)

    def admin_post(self, path: str) -> None:
        status, out = bench.http_call(self.admin, "POST", path, b"", timeout=60)
        if status != 200:
            raise RuntimeError(f"POST {path}: {status} {out[:300]!r}")

    def rss_mib(self) -> float:
        return bench.status_kib(self.proc.pid, "VmRSS") / 1024


def sleepy_not_completed(admin: int) -> int:
    rows = query(admin, "SELECT count(*) AS n FROM sys_invocation WHERE target_handler_name = 'sleepy' "
                        "AND status <> 'completed'")
    return int(rows[0]["n"])


def burst(name: str, args) -> dict:
    s = Server(name, args, args.burst_sdk)
    sampler, prober, caller = bench.RssSampler(s.proc.pid), HealthProber(s.admin), CallProber(s.ingress)
    sampler.start()
    prober.start()
    caller.start()
    res = wrk(args, s.ingress, "sleepy_send.lua", 64, args.burst_seconds, 10, env={"SLEEP_MS": "20000"})
    caller.phase = "after"
    out = {"accepted": res["ok"], "accepted_per_s": round(res["ok"] / res["seconds"]), "shed": res["shed"],
           "shed_per_s": round(res["shed"] / res["seconds"]), "other_errors": sum(res["errors"].values()) - res["shed"]}
    # The backlog: sends not completed yet, polled until none is left.
    t0 = time.monotonic()
    try:
        left = first_left = sleepy_not_completed(s.admin)
        deadline = t0 + args.drain_timeout
        while left > 0 and time.monotonic() < deadline:
            time.sleep(2)
            left = sleepy_not_completed(s.admin)
            bench.log(f"{name}: {left} sends not completed, RSS {s.rss_mib():.0f} MiB")
        drained_s = time.monotonic() - t0
        out.update({"not_completed_after_burst": first_left, "not_completed_at_end": left,
                    "drain_seconds": round(drained_s, 1),
                    "drain_per_s": round((first_left - left) / drained_s) if drained_s else None})
    except RuntimeError as e:  # a server whose SQL cannot count them
        out["drain_error"] = str(e)
    remaining = args.after_seconds - (time.monotonic() - t0)
    if remaining > 0:
        time.sleep(remaining)
    out.update(caller.finish())
    out.update(prober.finish())
    out["peak_rss_mib"] = round(sampler.finish() / 1024, 1)
    out["end_rss_mib"] = round(s.rss_mib(), 1)
    return out


def connections(name: str, args) -> dict:
    s = Server(name, args, "ts")
    sampler, prober = bench.RssSampler(s.proc.pid), HealthProber(s.admin)
    sampler.start()
    prober.start()
    res = wrk(args, s.ingress, "sleepy_call.lua", args.connections, args.connections_seconds, 60,
              env={"SLEEP_MS": str(args.slow_ms)})
    out = {"connections": args.connections, "answered": res["ok"], "shed": res["shed"],
           "timeouts": res["errors"]["timeout"], "connect_errors": res["errors"]["connect"],
           "read_errors": res["errors"]["read"], "call_p50_ms": res["latency_us"]["p50"] / 1000,
           "call_p99_ms": res["latency_us"]["p99"] / 1000}
    out.update(prober.finish())
    out["peak_rss_mib"] = round(sampler.finish() / 1024, 1)
    return out


def stored_invocations(admin: int) -> int:
    rows = query(admin, "SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = 'Counter'")
    return int(rows[0]["n"])


def backlog(name: str, args) -> dict:
    s = Server(name, args, args.backlog_sdk)
    hold = name == "perdure"  # Restate has no deployment pause
    if hold:
        s.admin_post(f"/deployments/{s.deployment}/pause")
    sampler, prober = bench.RssSampler(s.proc.pid), HealthProber(s.admin)
    sampler.start()
    prober.start()
    accepted = shed = 0
    t0 = time.monotonic()
    while accepted < args.backlog:
        res = wrk(args, s.ingress, "counter.lua", 64, 5, 10, env={"COUNTER_SUFFIX": "/send"},
                  extra=[str(COUNTER_KEYS)])
        accepted += res["ok"]
        shed += res["shed"]
        bench.log(f"{name}: {accepted} sends accepted ({shed} shed), RSS {s.rss_mib():.0f} MiB")
    send_s = time.monotonic() - t0
    send_peak = sampler.max_kib / 1024
    stored = stored_invocations(s.admin) if hold else None
    done = counters_sum(s.admin)
    pending_at_end = (stored if hold else accepted) - done
    bench.log(f"{name}: {pending_at_end} pending ({stored} stored, {accepted} answered); RSS {s.rss_mib():.0f} MiB")
    t1 = time.monotonic()
    if hold:
        s.admin_post(f"/deployments/{s.deployment}/resume")
    target = stored if hold else accepted
    deadline = time.monotonic() + args.drain_timeout
    while done < target and time.monotonic() < deadline:
        time.sleep(5)
        done = counters_sum(s.admin)
        bench.log(f"{name}: {done} of {target} ran, RSS {s.rss_mib():.0f} MiB")
    drain_s = time.monotonic() - t1
    out = {"accepted": accepted, "shed": shed, "send_seconds": round(send_s, 1),
           "accepted_per_s": round(accepted / send_s), "held_while_sending": hold, "stored": stored,
           "pending_when_sending_stopped": pending_at_end, "peak_rss_while_sending_mib": round(send_peak, 1),
           "ran": done, "all_ran_once": done == target if hold else None,
           "drain_seconds": round(drain_s, 1), "drain_per_s": round(pending_at_end / drain_s) if drain_s else None}
    out.update(prober.finish())
    out["peak_rss_mib"] = round(sampler.finish() / 1024, 1)
    out["end_rss_mib"] = round(s.rss_mib(), 1)
    return out


SCENARIOS = {"burst": burst, "connections": connections, "backlog": backlog}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--perdure-bin", default=os.environ.get("PERDURE_BIN", str(TARGET / "release/perdure")))
    ap.add_argument("--restate-bin", default=os.environ.get("RESTATE_BIN", str(CACHE / "restate-1.7.12/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server")))
    ap.add_argument("--node", default=os.environ.get("NODE22", "node"))
    ap.add_argument("--services", type=Path, default=REPO / "tests/services/ts/services.mjs")
    ap.add_argument("--rust-services", default=os.environ.get("RUST_SERVICES_BIN", str(TARGET / "release/perdure-rust-services")))
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--only", choices=["perdure", "restate"])
    ap.add_argument("--scenarios", default="burst,connections,backlog")
    ap.add_argument("--burst-seconds", type=int, default=60)
    ap.add_argument("--burst-sdk", choices=["ts", "rust"], default="ts",
                    help="which SDK serves Greeter/sleepy and Greeter/greet in the burst")
    ap.add_argument("--after-seconds", type=int, default=30,
                    help="how long the call probe goes on after the burst (at least; the drain may take longer)")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--connections-seconds", type=int, default=30)
    ap.add_argument("--slow-ms", type=int, default=2000, help="how long each held call sleeps")
    ap.add_argument("--backlog", type=int, default=1_000_000, help="sends to accept before draining")
    ap.add_argument("--backlog-sdk", choices=["ts", "rust"], default="rust")
    ap.add_argument("--drain-timeout", type=int, default=1800)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "overload.json")
    args = ap.parse_args()
    scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    unknown = [x for x in scenarios if x not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    results: dict = {}
    for scenario in scenarios:
        for name in [args.only] if args.only else ["perdure", "restate"]:
            try:
                results.setdefault(scenario, {})[name] = SCENARIOS[scenario](name, args)
            except Exception as e:  # keep the other numbers
                results.setdefault(scenario, {})[name] = {"error": f"{type(e).__name__}: {e}"}
            finally:
                bench.PROCS.stop_all()
            bench.log(f"{scenario} {name}: {results[scenario][name]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0 if all("error" not in r for s in results.values() for r in s.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
