#!/usr/bin/env python3
"""Greeter through a Lambda deployment: perdure against restate-server 1.7.12 in one run.

For each server in turn: a fresh Lambda emulator (tests/lambda-emu, release) serving one function,
the Rust SDK's Lambda handler (tests/services/rust, `perdure-rust-lambda`, release) published as
version 1 behind the alias `live`; a fresh server pointed at the emulator through
AWS_ENDPOINT_URL; the alias ARN registered with `POST /deployments {"arn": ...}`; a warm-up; then
wrk posting `Greeter/greet` at each connection count. Reported per server and workload:
throughput, p50/p99, the server's CPU per invocation and its peak RSS, and the emulator's
(emulator + function processes) CPU per invocation, which is the same work for both servers.

  bench/lambda.py [--duration S] [--conns 1,16] [--only perdure|restate] [--environments N]

Needs: a release perdure, `cargo build --release -p perdure-lambda-emu -p perdure-rust-services`,
wrk, and restate-server 1.7.12 (bench/run.sh installs it) for the restate column.
"""

from __future__ import annotations

import argparse
import datetime
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
import bench  # noqa: E402  (process, wrk and measurement helpers)

PROCS = bench.PROCS
log = bench.log
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/root/.cache/perdure/target"))
CACHE = Path(os.environ.get("PERDURE_CACHE", Path.home() / ".cache/perdure"))
ALIAS_ARN = "arn:aws:lambda:us-east-1:123456789012:function:greeter:live"


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its descendants still alive (the emulator and its runtimes)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            total += bench.cpu_seconds(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return total


def start_emulator(args, workdir: Path) -> tuple[subprocess.Popen, int]:
    config = {"functions": [{
        "name": "greeter",
        "versions": [{"program": args.function_bin, "env": {"RESTATE_LOGGING": "ERROR", "TAG": "v1"},
                      "max_environments": args.environments}],
        "aliases": {"live": "1"},
    }]}
    cfg = workdir / "functions.json"
    cfg.write_text(json.dumps(config))
    errlog = open(workdir / "emulator.log", "wb")
    p = PROCS.spawn([args.emu_bin, "--config", str(cfg)], stdout=subprocess.PIPE, stderr=errlog)
    errlog.close()
    line = p.stdout.readline().decode().strip()
    if not line.startswith("listening "):
        raise RuntimeError(f"emulator did not start: {line!r}\n{bench.tail(workdir / 'emulator.log')}")
    return p, int(line.split()[1])


def aws_env(emu_port: int) -> dict:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{emu_port}",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }


def bench_server(name: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"perdure-lambda-bench-{name}-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    logfile = workdir / "server.log"
    emu, emu_port = start_emulator(args, workdir)
    ingress, admin, node = bench.free_ports(3)
    cmd, env = bench.server_command(name, args, data_dir, ingress, admin, node)
    env.update(aws_env(emu_port))
    result: dict = {"server": name, "workloads": {}}
    log(f"{name}: starting (ingress {ingress}, admin {admin}, emulator {emu_port})")
    try:
        with open(logfile, "wb") as lf:
            server = PROCS.spawn(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, cwd=str(workdir))
        bench.wait_for("admin /health", lambda: bench.http_call(admin, "GET", "/health", timeout=1)[0] == 200,
                       timeout=120, proc=server, logfile=logfile)
        body = json.dumps({"arn": ALIAS_ARN}).encode()
        status, out = bench.http_call(admin, "POST", "/deployments", body, timeout=60)
        if status not in (200, 201):
            raise RuntimeError(f"registering {ALIAS_ARN}: {status} {out[:500]!r}")
        probe = bench.http_call(ingress, "POST", "/Greeter/greet", b'"bench"', timeout=60)
        if probe != (200, b'"Hello, bench!"'):
            raise RuntimeError(f"first greet: {probe!r}\n{bench.tail(logfile)}")
        if args.warmup:
            bench.run_wrk(args, ingress, "greet.lua", max(args.conns), args.warmup)
        for conns in args.conns:
            sampler = bench.RssSampler(server.pid)
            sampler.start()
            cpu0, emu0 = bench.cpu_seconds(server.pid), tree_cpu_seconds(emu.pid)
            res = bench.run_wrk(args, ingress, "greet.lua", conns, args.duration)
            cpu1, emu1 = bench.cpu_seconds(server.pid), tree_cpu_seconds(emu.pid)
            peak = sampler.finish()
            ok = res["ok"]
            w = {
                "conns": conns, "ok": ok, "errors": res["error_count"],
                "throughput": ok / (res["duration_us"] / 1e6),
                "p50_ms": res["latency_us"]["p50"] / 1000, "p99_ms": res["latency_us"]["p99"] / 1000,
                "server_cpu_ms_per_req": (cpu1 - cpu0) * 1000 / ok if ok else None,
                "lambda_cpu_ms_per_req": (emu1 - emu0) * 1000 / ok if ok else None,
                "server_peak_rss_mib": peak / 1024,
            }
            result["workloads"][f"greet c{conns}"] = w
            log(f"{name}: greet c{conns}: {w['throughput']:.0f}/s, p50 {w['p50_ms']:.2f} ms, "
                f"server {w['server_cpu_ms_per_req'] or 0:.3f} ms CPU/req, errors {w['errors']}")
        PROCS.stop(server)
    finally:
        PROCS.stop(emu)
        PROCS.stop_all()
    return result


def markdown(results: dict, args) -> str:
    names = [n for n in ("restate", "perdure") if n in results]
    head = "| measure | " + " | ".join(f"{n}" for n in names) + (" | perdure / restate |" if len(names) == 2 else " |")
    lines = [head, "|---|" + "---:|" * (len(names) + (1 if len(names) == 2 else 0))]
    rows = [("throughput (req/s)", "throughput", "{:.0f}"), ("p50 (ms)", "p50_ms", "{:.2f}"),
            ("p99 (ms)", "p99_ms", "{:.2f}"), ("server CPU (ms/req)", "server_cpu_ms_per_req", "{:.3f}"),
            ("emulator + function CPU (ms/req)", "lambda_cpu_ms_per_req", "{:.3f}"),
            ("server peak RSS (MiB)", "server_peak_rss_mib", "{:.0f}"), ("errors", "errors", "{}")]
    for conns in args.conns:
        for label, key, f in rows:
            vals = []
            for n in names:
                w = results[n].get("workloads", {}).get(f"greet c{conns}") if "error" not in results[n] else None
                vals.append(w.get(key) if w else None)
            cells = [f.format(v) if v is not None else "-" for v in vals]
            ratio = ""
            if len(names) == 2:
                a, b = vals
                ratio = f" {b / a:.2f} |" if a and b is not None and key != "errors" else " |"
            lines.append(f"| greet c{conns}: {label} | " + " | ".join(cells) + " |" + ratio)
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    ap.add_argument("--perdure-bin", default=env("PERDURE_BIN", str(TARGET / "release/perdure")))
    ap.add_argument("--restate-bin", default=env("RESTATE_BIN", str(CACHE / "restate-1.7.12/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server")))
    ap.add_argument("--emu-bin", default=str(TARGET / "release/perdure-lambda-emu"))
    ap.add_argument("--function-bin", default=str(TARGET / "release/perdure-rust-lambda"))
    ap.add_argument("--wrk", default=env("WRK", "wrk"))
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--duration", type=int, default=10, help="seconds per workload")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--conns", default="1,16", help="comma-separated connection counts")
    ap.add_argument("--environments", type=int, default=16, help="execution environments the version may use")
    ap.add_argument("--only", choices=["perdure", "restate"])
    ap.add_argument("--out", type=Path, default=HERE / "out" / "lambda.json")
    args = ap.parse_args()
    args.conns = [int(c) for c in args.conns.split(",") if c.strip()]
    for path in (args.emu_bin, args.function_bin):
        if not os.access(path, os.X_OK):
            ap.error(f"{path} is missing: cargo build --release -p perdure-lambda-emu -p perdure-rust-services")
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        log(f"WARNING: load average is {load1:.2f} before starting; the numbers will be noisy")
    results: dict = {}
    for name in [args.only] if args.only else ["perdure", "restate"]:
        binary = args.perdure_bin if name == "perdure" else args.restate_bin
        if not os.access(binary, os.X_OK):
            results[name] = {"error": f"binary not found: {binary}"}
            log(f"{name}: skipped ({results[name]['error']})")
            continue
        try:
            results[name] = bench_server(name, args)
        except Exception as e:  # one server failing must not lose the other's numbers
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            log(f"{name}: FAILED: {e}")
    table = markdown(results, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": {"duration_s": args.duration, "conns": args.conns, "environments": args.environments},
        "loadavg_at_start": load1, "servers": results, "markdown": table}, indent=2) + "\n")
    print(table)
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
