#!/usr/bin/env python3
"""What metrics and traces cost: Greeter throughput and server CPU in the modes chosen with
--modes: off (`PERDURE_NODE__ENABLED=false`, no tracing endpoint), metrics (metrics only), on
(metrics on the node port and every invocation traced, exported over OTLP/HTTP to a sink in this
script) and on-10% (the same with `tracing.sample-ratio = 0.1`), alternating them over several
rounds (the order reversed each round) so drift on the machine hits all alike.

    R=/root/.cache/perdure/target-release/release
    python3 bench/observability.py --perdure-bin $R/perdure --sdk rust \\
        --rust-services $R/perdure-rust-services --node $NODE22 --rounds 4 --duration 10 \\
        --modes off,metrics,on-10%,on

The sink answers every export with 200 and counts spans' bytes; it runs on the same machine,
so its CPU (reported) competes with the server as a local collector would.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ["greet-c16", "greet-c128"]


class Sink(BaseHTTPRequestHandler):
    exports = 0
    bytes = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with Sink.lock:
            Sink.exports += 1
            Sink.bytes += len(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def run_bench(args, mode: str, sink_url: str, out: Path) -> dict:
    env = dict(os.environ)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env["PERDURE_NODE__ENABLED"] = "false" if mode == "off" else "true"
    if mode.startswith("on"):
        env["PERDURE_TRACING__ENDPOINT"] = sink_url
        env["PERDURE_TRACING__PROTOCOL"] = "http/protobuf"
        env["PERDURE_TRACING__SAMPLE_RATIO"] = "0.1" if mode == "on-10%" else "1.0"
    cmd = [sys.executable, str(HERE / "bench.py"), "--only", "perdure", "--sdk", args.sdk,
           "--perdure-bin", args.perdure_bin, "--node", args.node, "--duration", str(args.duration),
           "--warmup", str(args.warmup), "--workloads", ",".join(WORKLOADS), "--out", str(out)]
    if args.rust_services:
        cmd += ["--rust-services", args.rust_services]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["servers"]["perdure"]["workloads"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--perdure-bin", required=True)
    ap.add_argument("--sdk", choices=["ts", "rust"], default="rust")
    ap.add_argument("--rust-services")
    ap.add_argument("--node", default="node")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--modes", default="off,on",
                    help="comma-separated, from: off (no metrics, no traces), metrics (metrics only), "
                         "on (metrics + every trace), on-10%% (metrics + 10%% of traces)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "observability.json")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    modes = args.modes.split(",")
    if "off" not in modes or set(modes) - {"off", "metrics", "on", "on-10%"}:
        ap.error("--modes takes off (required), metrics, on, on-10%")
    runs: dict = {m: [] for m in modes}
    sink_cpu = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            # Alternate which goes first, so a trend over the run hits both alike.
            for mode in (modes if round_ % 2 == 0 else modes[::-1]):
                before = time.process_time()
                result = run_bench(args, mode, sink_url, Path(tmp) / f"{mode}-{round_}.json")
                if mode.startswith("on"):
                    sink_cpu += time.process_time() - before
                runs[mode].append(result)
                row = ", ".join(f"{w} {result[w]['throughput_rps']:.0f} req/s" for w in WORKLOADS)
                print(f"[observability] round {round_ + 1} {mode}: {row}", file=sys.stderr, flush=True)
    server.shutdown()

    summary: dict = {"rounds": args.rounds, "duration_s": args.duration, "sdk": args.sdk,
                     "sink_exports": Sink.exports, "sink_bytes": Sink.bytes, "sink_cpu_s": sink_cpu,
                     "workloads": {}}
    lines = ["| workload | mode | req/s (median) | vs off | server CPU ms/req |", "|---|---|---|---|---|"]
    for w in WORKLOADS:
        med = {m: statistics.median(r[w]["throughput_rps"] for r in runs[m]) for m in runs}
        cpu = {m: statistics.median(r[w]["server_cpu_ms_per_req"] for r in runs[m]) for m in runs}
        summary["workloads"][w] = {"throughput_rps": med, "server_cpu_ms_per_req": cpu,
                                   "ratio": {m: med[m] / med["off"] for m in runs},
                                   "runs": {m: [r[w]["throughput_rps"] for r in runs[m]] for m in runs}}
        for m in modes:
            lines.append(f"| {w} | {m} | {med[m]:,.0f} | {med[m] / med['off']:.3f} | {cpu[m]:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print("\n".join(lines))
    print(f"\nspans exported: {Sink.exports} batches, {Sink.bytes / 2**20:.1f} MiB; "
          f"sink CPU {sink_cpu:.1f} s; {args.rounds} rounds of {args.duration} s per mode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
