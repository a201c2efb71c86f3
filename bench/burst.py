#!/usr/bin/env python3
"""A send burst: memory under a backlog (the hardening issue's first measurement).

For each server: a fresh data dir, the TypeScript services over HTTP/2 (bidi: a sleeping
invocation keeps its stream, so at most `concurrent-invocations-limit` run and the rest wait),
then wrk posting `Greeter/sleepy/send` (a 20 s durable sleep) for --duration seconds at 64
connections. Reported: sends accepted and their rate, the server's peak RSS during the burst
and its RSS at the end.

  bench/burst.py [--duration 15] [--only perdure|restate] [--sleep-ms 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/root/.cache/perdure/target"))
CACHE = Path(os.environ.get("PERDURE_CACHE", Path.home() / ".cache/perdure"))


def run(name: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"perdure-burst-{name}-"))
    (workdir / "data").mkdir()
    ingress, admin, node = bench.free_ports(3)
    cmd, env = bench.server_command(name, args, workdir / "data", ingress, admin, node)
    logfile = workdir / "server.log"
    try:
        with open(logfile, "wb") as lf:
            server = bench.PROCS.spawn(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, cwd=str(workdir))
        bench.wait_for("admin /health", lambda: bench.http_call(admin, "GET", "/health", timeout=1)[0] == 200,
                       timeout=120, proc=server, logfile=logfile)
        args.sdk = "ts"
        services, port = bench.start_services(args, workdir)
        status, out = bench.http_call(admin, "POST", "/deployments", json.dumps({"uri": f"http://127.0.0.1:{port}"}).encode(), timeout=30)
        if status not in (200, 201):
            raise RuntimeError(f"register: {status} {out[:300]!r}")
        sampler = bench.RssSampler(server.pid)
        sampler.start()
        os.environ["SLEEP_MS"] = str(args.sleep_ms)
        res = bench.run_wrk(args, ingress, "sleepy_send.lua", 64, args.duration)
        peak = sampler.finish()
        time.sleep(1)
        end = bench.status_kib(server.pid, "VmRSS")
        accepted = res["ok"]
        return {"accepted": accepted, "rate": accepted / (res["duration_us"] / 1e6), "errors": res["error_count"],
                "peak_rss_mib": peak / 1024, "end_rss_mib": end / 1024}
    finally:
        bench.PROCS.stop_all()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--perdure-bin", default=os.environ.get("PERDURE_BIN", str(TARGET / "release/perdure")))
    ap.add_argument("--restate-bin", default=os.environ.get("RESTATE_BIN", str(CACHE / "restate-1.7.12/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server")))
    ap.add_argument("--node", default=os.environ.get("NODE22", "node"))
    ap.add_argument("--services", type=Path, default=REPO / "tests/services/ts/services.mjs")
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--sleep-ms", type=int, default=20000)
    ap.add_argument("--only", choices=["perdure", "restate"])
    args = ap.parse_args()
    results = {}
    for name in [args.only] if args.only else ["perdure", "restate"]:
        try:
            results[name] = run(name, args)
        except Exception as e:  # keep the other server's numbers
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        bench.log(f"{name}: {results[name]}")
    print(json.dumps(results, indent=2))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
