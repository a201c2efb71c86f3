#!/usr/bin/env python3
"""Load benchmark: perdure vs the reference restate-server, one after the other.

Normally started by bench/run.sh, which installs restate-server, wrk, Node 22 and the test services
first. Python 3 standard library only. For each server: start it on a fresh data dir (startup time =
spawn until admin GET /health answers 200), start the TS test services (h2, one Node process),
register them, warm up, drive the workloads with wrk, and sample the server's CPU and memory from
/proc. Prints a markdown table (perdure | restate | ratio) and writes bench/out/latest.json.

CPU contention: the machine has 2 cores shared by the server, the Node services and wrk. wrk runs
with -t1 by default, i.e. one load-generator thread that can use at most one core; the Node services
use up to about one more. So absolute throughput is lower than on a dedicated box, and the server may
be starved at high concurrency: compare the two columns of one run rather than numbers across
machines. Server CPU ms per request counts only the server process and is the least contended figure.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# name, script, path shown in the table, connections, keys (counter.lua only; None = --keys)
WORKLOADS = [
    ("greet-c1", "greet.lua", "Greeter/greet", 1, None),
    ("greet-c16", "greet.lua", "Greeter/greet", 16, None),
    ("greet-c128", "greet.lua", "Greeter/greet", 128, None),
    ("counter-c16", "counter.lua", "Counter/<key of 1000>/add", 16, None),
    ("counter-c128", "counter.lua", "Counter/<key of 1000>/add", 128, None),
    ("counter1-c16", "counter.lua", "Counter/<one key>/add", 16, 1),
    ("counter1-c128", "counter.lua", "Counter/<one key>/add", 128, 1),
]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- process bookkeeping -----------------------------------------------------------------------


class Interrupted(Exception):
    pass


class Procs:
    """Processes this benchmark started, each in its own session/process group.

    Their group ids are mirrored in BENCH_PIDFILE (if set) so run.sh's trap can still clean up if
    this Python process is killed outright.
    """

    def __init__(self) -> None:
        self.live: dict[int, subprocess.Popen] = {}
        self.pidfile = os.environ.get("BENCH_PIDFILE")

    def _sync(self) -> None:
        if self.pidfile:
            Path(self.pidfile).write_text("".join(f"{pid}\n" for pid in self.live))

    def spawn(self, cmd: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.live[p.pid] = p
        self._sync()
        return p

    def stop(self, p: subprocess.Popen, grace: float = 15.0) -> float:
        """SIGTERM the process group, SIGKILL after `grace` seconds. Returns seconds taken."""
        t0 = time.monotonic()
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"pid {p.pid} ignored SIGTERM for {grace}s: SIGKILL")
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self.live.pop(p.pid, None)
        self._sync()
        return time.monotonic() - t0

    def stop_all(self) -> None:
        for p in list(self.live.values()):
            self.stop(p, grace=5.0)


PROCS = Procs()


def on_signal(signum, _frame):
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # let the cleanup finish
    raise Interrupted(signal.Signals(signum).name)


# --- /proc, disk and network helpers ---------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Max VmRSS of a process, sampled every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.max_kib = 0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.max_kib = max(self.max_kib, status_kib(self.pid, "VmRSS"))
            except OSError:
                return
            if self._stop_evt.wait(self.interval):
                return

    def finish(self) -> int:
        self._stop_evt.set()
        self.join()
        return self.max_kib


def dir_usage(path: Path) -> tuple[int, int]:
    """(allocated bytes as du counts them, apparent bytes) of a directory tree."""
    allocated = apparent = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # files come and go while the server runs
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1, chosen by the OS."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_call(port: int, method: str, path: str, body: bytes | None = None,
              content_type: str = "application/json", timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": content_type} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- load generation ------------------------------------------------------------------------


def run_wrk(args, port: int, script: str, conns: int, duration: int, keys=None) -> dict:
    # -t1 by default: one wrk thread (<= 1 core) drives all connections with epoll. On this 2-core
    # machine that leaves roughly one core for the server plus the Node services, so high-concurrency
    # throughput is CPU-bound for everything; -t2 would starve the server further.
    cmd = [
        args.wrk, f"-t{min(args.wrk_threads, conns)}", f"-c{conns}", f"-d{duration}s",
        "--timeout", "10s", "--latency", "-s", str(HERE / "wrk" / script),
        f"http://127.0.0.1:{port}",
    ]
    if script == "counter.lua":
        cmd += ["--", str(keys or args.keys)]
    p = PROCS.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=duration + 60)
    finally:
        PROCS.stop(p, grace=2.0)
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            res = json.loads(line[len("BENCH_JSON "):])
            errs = res["errors"]
            res["ok"] = max(0, res["requests"] - errs["status"])
            res["error_count"] = sum(errs.values())
            return res
    raise RuntimeError(f"wrk gave no summary (exit {p.returncode}):\n{out}")


# --- one server -----------------------------------------------------------------------------


def server_command(name: str, args, data_dir: Path, ingress: int, admin: int, node: int):
    env = dict(os.environ)
    if name == "restate":
        env.update({
            "RESTATE_DISABLE_TELEMETRY": "true",
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
        })
        return [args.restate_bin, "--base-dir", str(data_dir), "--no-logo"], env
    env.update({
        "PERDURE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
        "PERDURE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
        "PERDURE_PG__BIND_ADDRESS": f"127.0.0.1:{node}",
        "PERDURE_NODE__BIND_ADDRESS": "127.0.0.1:0",
    })
    return [args.perdure_bin, "serve", "--data-dir", str(data_dir)], env


def wait_for(what: str, check, timeout: float, interval: float = 0.02, proc=None, logfile=None):
    deadline = time.monotonic() + timeout
    last_err = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) while waiting for {what}:\n"
                               f"{tail(logfile) if logfile else ''}")
        try:
            if check():
                return
        except (OSError, http.client.HTTPException) as e:
            last_err = e
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last error: {last_err})")


def start_services(args, workdir: Path) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, RESTATE_LOGGING="WARN")  # no per-invocation log lines
    errlog = open(workdir / "services.log", "wb")
    if args.sdk == "rust":
        cmd, cwd = [args.rust_services, "0"], str(REPO)
    else:
        cmd, cwd = [args.node, str(args.services), "0", "h2", "bench"], str(args.services.parent)
    p = PROCS.spawn(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=errlog)
    errlog.close()
    port_box: list[int] = []

    def read():
        for raw in p.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("listening "):
                port_box.append(int(line.split()[1]))
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout=30)
    if not port_box:
        PROCS.stop(p)
        raise RuntimeError(f"services did not print 'listening <port>':\n{tail(workdir / 'services.log')}")
    return p, port_box[0]


def bench_server(name: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"perdure-bench-{name}-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    logfile = workdir / "server.log"
    ingress, admin, node = free_ports(3)
    cmd, env = server_command(name, args, data_dir, ingress, admin, node)
    result: dict = {"server": name, "command": cmd, "ports": {"ingress": ingress, "admin": admin},
                    "workloads": {}}
    log(f"{name}: starting {' '.join(cmd)} (ingress {ingress}, admin {admin})")

    server = services = None
    try:
        with open(logfile, "wb") as lf:
            t0 = time.monotonic()
            server = PROCS.spawn(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, cwd=str(workdir))
        wait_for("admin /health", lambda: http_call(admin, "GET", "/health", timeout=1)[0] == 200,
                 timeout=120, proc=server, logfile=logfile)
        result["startup_s"] = time.monotonic() - t0
        log(f"{name}: admin /health answered after {result['startup_s']:.3f}s")
        time.sleep(1.0)  # let it finish creating its stores before measuring the "fresh" size
        result["fresh_data_dir_bytes"], result["fresh_data_dir_apparent_bytes"] = dir_usage(data_dir)
        result["rss_after_startup_kib"] = status_kib(server.pid, "VmRSS")

        services, svc_port = start_services(args, workdir)
        log(f"{name}: services listening on {svc_port}; registering")
        body = json.dumps({"uri": f"http://127.0.0.1:{svc_port}"}).encode()
        reg: list = []
        try:
            wait_for("POST /deployments",
                     lambda: reg.append(http_call(admin, "POST", "/deployments", body, timeout=10))
                     or reg[-1][0] in (200, 201), timeout=30, interval=0.5, proc=server, logfile=logfile)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; last response: {reg[-1] if reg else None}") from None
        invocations = 0
        probe: list = []
        try:
            wait_for("first Greeter/greet",
                     lambda: probe.append(http_call(ingress, "POST", "/Greeter/greet", b'"bench"', timeout=10))
                     or probe[-1][0] == 200, timeout=60, interval=0.2, proc=server, logfile=logfile)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; last response: {probe[-1] if probe else None}") from None
        invocations += 1
        if probe[-1][1] != b'"Hello, bench!"':
            raise RuntimeError(f"unexpected greet response: {probe[-1][1]!r}")

        if args.warmup > 0:
            for script in ("greet.lua", "counter.lua"):
                log(f"{name}: warm-up {script} c16 {args.warmup}s")
                invocations += run_wrk(args, ingress, script, 16, args.warmup)["ok"]

        for wl, script, _path, conns, keys in WORKLOADS:
            if args.workloads and wl not in args.workloads:
                continue
            cpu0, svc0 = cpu_seconds(server.pid), cpu_seconds(services.pid)
            sampler = RssSampler(server.pid)
            sampler.start()
            res = run_wrk(args, ingress, script, conns, args.duration, keys)
            peak_rss = sampler.finish()
            cpu = cpu_seconds(server.pid) - cpu0
            svc_cpu = cpu_seconds(services.pid) - svc0
            secs = res["duration_us"] / 1e6
            ok = res["ok"]
            invocations += ok
            result["workloads"][wl] = {
                "connections": conns,
                "requests_ok": ok,
                "errors": res["error_count"],
                "error_detail": res["errors"],
                "throughput_rps": ok / secs if secs else 0.0,
                "p50_ms": res["latency_us"]["p50"] / 1000,
                "p90_ms": res["latency_us"]["p90"] / 1000,
                "p99_ms": res["latency_us"]["p99"] / 1000,
                "max_ms": res["latency_us"]["max"] / 1000,
                "server_cpu_s": cpu,
                "server_cpu_ms_per_req": cpu * 1000 / ok if ok else None,
                "services_cpu_ms_per_req": svc_cpu * 1000 / ok if ok else None,
                "server_peak_rss_kib": peak_rss,
            }
            w = result["workloads"][wl]
            log(f"{name}: {wl}: {w['throughput_rps']:.0f} req/s, p50 {w['p50_ms']:.2f} ms, "
                f"p99 {w['p99_ms']:.2f} ms, cpu {w['server_cpu_ms_per_req'] or 0:.3f} ms/req, "
                f"rss {peak_rss / 1024:.0f} MiB, errors {w['errors']}")

        time.sleep(2.0)  # let in-flight work settle before measuring disk
        result["invocations"] = invocations
        result["data_dir_bytes_after_runs"], result["data_dir_apparent_bytes_after_runs"] = dir_usage(data_dir)
        result["bytes_per_invocation"] = result["data_dir_bytes_after_runs"] / invocations if invocations else None
        result["apparent_bytes_per_invocation"] = (
            result["data_dir_apparent_bytes_after_runs"] / invocations if invocations else None)
        result["growth_bytes_per_invocation"] = (
            (result["data_dir_bytes_after_runs"] - result["fresh_data_dir_bytes"]) / invocations
            if invocations else None)
        result["vmhwm_kib"] = status_kib(server.pid, "VmHWM")
        result["server_cpu_total_s"] = cpu_seconds(server.pid)
    finally:
        if services is not None:
            PROCS.stop(services)
        if server is not None:
            result["shutdown_s"] = PROCS.stop(server, grace=30.0)
            result["data_dir_bytes_after_shutdown"] = dir_usage(data_dir)[0]
        if args.keep:
            log(f"{name}: kept {workdir}")
            result["workdir"] = str(workdir)
        else:
            keep_log = args.out.parent / "logs"
            keep_log.mkdir(parents=True, exist_ok=True)
            for src, dst in ((logfile, f"{name}-server.log"), (workdir / "services.log", f"{name}-services.log")):
                if src.exists():
                    shutil.copyfile(src, keep_log / dst)
            shutil.rmtree(workdir, ignore_errors=True)
    return result


# --- report ---------------------------------------------------------------------------------


def build_rows(results: dict) -> list[dict]:
    """One row per metric: its value for each server and the ratio perdure/restate."""
    mib = 1 / 2**20
    specs: list[tuple[str, object]] = [
        ("startup time (s)", lambda r: r.get("startup_s")),
        ("fresh data dir, du (MiB)", lambda r: scaled(r.get("fresh_data_dir_bytes"), mib)),
        ("fresh data dir, apparent (MiB)", lambda r: scaled(r.get("fresh_data_dir_apparent_bytes"), mib)),
    ]
    for wl, _script, path, conns, _keys in WORKLOADS:
        label = f"{path} c={conns}"

        def g(key, wl=wl, scale=None):
            return lambda r: scaled(r.get("workloads", {}).get(wl, {}).get(key), scale)

        specs += [
            (f"{label}: throughput (req/s)", g("throughput_rps")),
            (f"{label}: p50 latency (ms)", g("p50_ms")),
            (f"{label}: p99 latency (ms)", g("p99_ms")),
            (f"{label}: server CPU (ms/req)", g("server_cpu_ms_per_req")),
            (f"{label}: server peak RSS (MiB)", g("server_peak_rss_kib", scale=1 / 1024)),
            (f"{label}: errors", g("errors")),
        ]
    specs += [
        ("completed invocations", lambda r: r.get("invocations")),
        ("data dir after runs, du (MiB)", lambda r: scaled(r.get("data_dir_bytes_after_runs"), mib)),
        ("data dir after runs, apparent (MiB)", lambda r: scaled(r.get("data_dir_apparent_bytes_after_runs"), mib)),
        ("disk per invocation, du (bytes)", lambda r: r.get("bytes_per_invocation")),
        ("disk per invocation, apparent (bytes)", lambda r: r.get("apparent_bytes_per_invocation")),
        ("data dir after shutdown, du (MiB)", lambda r: scaled(r.get("data_dir_bytes_after_shutdown"), mib)),
        ("server VmHWM, lifetime (MiB)", lambda r: scaled(r.get("vmhwm_kib"), 1 / 1024)),
    ]
    rows = []
    for label, get in specs:
        vals = {}
        for name in ("perdure", "restate"):
            r = results.get(name)
            vals[name] = get(r) if isinstance(r, dict) and "error" not in r else None
        p, q = vals["perdure"], vals["restate"]
        ratio = p / q if isinstance(p, (int, float)) and isinstance(q, (int, float)) and q else None
        rows.append({"metric": label, "perdure": p, "restate": q, "ratio": ratio})
    return rows


def scaled(v, s):
    return v if v is None or s is None else v * s


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def markdown(rows: list[dict], results: dict, args) -> str:
    head = ["| metric | perdure | restate 1.7.12 | ratio (perdure/restate) |", "|---|---:|---:|---:|"]
    body = [f"| {r['metric']} | {fmt(r['perdure'])} | {fmt(r['restate'])} | "
            f"{'-' if r['ratio'] is None else format(r['ratio'], '.2f')} |" for r in rows]
    notes = [f"\n{args.duration}s per workload, wrk -t{args.wrk_threads}, {os.cpu_count()} cores, "
             f"{args.keys} Counter keys, load average {args.load1:.2f} at start. "
             "Ratio < 1 is better for perdure except for throughput."]
    if args.baseline_note:
        notes.append(args.baseline_note)
    for name in ("perdure", "restate"):
        r = results.get(name)
        if isinstance(r, dict) and "error" in r:
            notes.append(f"{name}: not measured: {r['error']}")
    return "\n".join(head + body + notes)


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    ap.add_argument("--perdure-bin", default=env("PERDURE_BIN", "/root/.cache/perdure/target/release/perdure"))
    ap.add_argument("--restate-bin", default=env("RESTATE_BIN"))
    ap.add_argument("--node", default=env("NODE22", "node"), help="Node 22 binary for the services")
    ap.add_argument("--services", type=Path, default=REPO / "tests/services/ts/services.mjs")
    ap.add_argument("--sdk", choices=["ts", "rust"], default=env("BENCH_SDK", "ts"),
                    help="which SDK serves Greeter and Counter: the TypeScript services on Node 22, or the "
                         "Rust SDK services (tests/services/rust, built in release by run.sh)")
    ap.add_argument("--rust-services", default=env("RUST_SERVICES_BIN",
                    "/root/.cache/perdure/target/release/perdure-rust-services"))
    ap.add_argument("--wrk", default=env("WRK", "wrk"))
    ap.add_argument("--only", choices=["perdure", "restate"], default=env("BENCH_ONLY") or None)
    ap.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "10")),
                    help="seconds per workload (integer)")
    ap.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "3")),
                    help="seconds of warm-up per workload kind (0 = none)")
    ap.add_argument("--wrk-threads", type=int, default=int(env("BENCH_WRK_THREADS", "1")))
    ap.add_argument("--keys", type=int, default=int(env("BENCH_KEYS", "1000")), help="Counter keys")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "latest.json")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dirs and logs")
    ap.add_argument("--baseline", type=Path, default=env("BENCH_BASELINE"),
                    help="with --only: take the other server's column from this earlier JSON report")
    ap.add_argument("--workloads", type=lambda v: [w for w in v.split(",") if w], default=None,
                    help="comma-separated workload names to run (default: all): "
                         + ",".join(w[0] for w in WORKLOADS))
    args = ap.parse_args()
    if args.workloads and (unknown := set(args.workloads) - {w[0] for w in WORKLOADS}):
        ap.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    if args.duration < 1:
        ap.error("--duration must be >= 1")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    load1 = args.load1 = os.getloadavg()[0]
    if load1 > 0.5:
        log(f"WARNING: load average is {load1:.2f} before starting: other work on this machine "
            "competes with the servers, so the numbers will be lower and noisier")
    servers = [args.only] if args.only else ["perdure", "restate"]
    results: dict = {}
    try:
        for name in servers:
            binary = args.perdure_bin if name == "perdure" else args.restate_bin
            if not binary or not os.access(binary, os.X_OK):
                results[name] = {"error": f"binary not found: {binary}"}
                log(f"{name}: skipped ({results[name]['error']})")
                continue
            try:
                results[name] = bench_server(name, args)
            except Interrupted:
                raise
            except Exception as e:  # one server failing must not lose the other's numbers
                results[name] = {"error": f"{type(e).__name__}: {e}"}
                log(f"{name}: FAILED: {e}")
    except Interrupted as e:
        log(f"interrupted ({e}); cleaning up")
        PROCS.stop_all()
        return 130
    finally:
        PROCS.stop_all()

    baseline_note = None
    if args.only and args.baseline:
        other = "restate" if args.only == "perdure" else "perdure"
        try:
            old = json.loads(args.baseline.read_text())
            if isinstance(old.get("servers", {}).get(other), dict):
                results[other] = old["servers"][other]
                baseline_note = f"{other} numbers are from {args.baseline} ({old.get('generated_at')})."
        except (OSError, ValueError) as e:
            log(f"cannot read baseline {args.baseline}: {e}")
    args.baseline_note = baseline_note

    rows = build_rows(results)
    table = markdown(rows, results, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": {"duration_s": args.duration, "warmup_s": args.warmup, "wrk_threads": args.wrk_threads,
                   "keys": args.keys, "only": args.only,
                   "baseline": str(args.baseline) if args.baseline_note else None},
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_at_start": load1},
        "rows": rows,
        "servers": results,
        "markdown": table,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table)
    log(f"wrote {args.out}")
    measured = [results[n] for n in servers if n in results]
    return 0 if all("error" not in r for r in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
