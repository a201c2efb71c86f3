#!/usr/bin/env python3
"""Crash soak: SIGKILL perdure again and again under a mixed workload, then check that every
acknowledged invocation completed exactly once. Not part of CI (it takes minutes); the e2e
suite keeps a short version (crash::sigkill_at_random_points_loses_nothing_acknowledged).

Workload (4 client threads, each request retried with the same idempotency key until it is
acknowledged, across the crashes):
  - Counter/<key>/add/send 1         exclusive object handlers; a key's final count must equal
                                     the adds acknowledged for it (none lost, none doubled)
  - Greeter/greetAndCount/send name  a call from a service to an object in another partition;
                                     each name once, so Counter/<name> must end at 1
  - SleepWorkflow/<key>/run/send 200 a workflow with a durable sleep; its output must be there
  - Greeter/sleepy/send 300          a durable sleep; its output must be there
  - Waiter/awaitAwakeable/send box   an awakeable whose id goes to Mailbox/<box>; the client
                                     resolves it through the ingress; the output must be "got <box>"

  scripts/soak.py [--kills 200] [--partitions 4] [--perdure-bin PATH] [--node NODE22]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import bench  # noqa: E402  (process, port and HTTP helpers)

ANSWERS: dict = {}  # what the retries saw, by status or error

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/root/.cache/perdure/target"))


class Server:
    def __init__(self, args, data: Path, log: Path):
        self.args, self.data, self.log = args, data, log
        self.ingress, self.admin, self.pg = bench.free_ports(3)
        self.proc = None

    def start(self):
        env = dict(os.environ, PERDURE_INGRESS__BIND_ADDRESS=f"127.0.0.1:{self.ingress}",
                   PERDURE_ADMIN__BIND_ADDRESS=f"127.0.0.1:{self.admin}", PERDURE_PG__BIND_ADDRESS=f"127.0.0.1:{self.pg}",
                   PERDURE_NODE__BIND_ADDRESS="127.0.0.1:0")
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen([self.args.perdure_bin, "serve", "--data-dir", str(self.data),
                                          "--partitions", str(self.args.partitions)],
                                         env=env, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)
        bench.wait_for("admin /health", lambda: bench.http_call(self.admin, "GET", "/health", timeout=1)[0] == 200,
                       timeout=60, proc=self.proc, logfile=self.log)

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def call(port: int, method: str, path: str, body: bytes | None, headers: dict, timeout: float = 10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def until_acknowledged(server: Server, path: str, body: str, key: str | None, stop: threading.Event) -> str | None:
    """POSTs until a 202 (the send is durable); the same idempotency key every time (a
    workflow's run is idempotent by its workflow key instead)."""
    headers = {"content-type": "application/json"}
    if key:
        headers["idempotency-key"] = key
    while not stop.is_set():
        try:
            status, out = call(server.ingress, "POST", path, body.encode(), headers)
            if status == 202:
                return json.loads(out)["invocationId"]
            ANSWERS[status] = ANSWERS.get(status, 0) + 1
        except (OSError, http.client.HTTPException, ValueError) as e:
            ANSWERS[type(e).__name__] = ANSWERS.get(type(e).__name__, 0) + 1
        time.sleep(0.05)
    return None


def resolve(server: Server, box: str, stop: threading.Event) -> bool:
    """Takes the awakeable id from Mailbox/<box> and resolves it with the box name."""
    while not stop.is_set():
        try:
            status, out = call(server.ingress, "GET", f"/Mailbox/{box}/take", None, {})
            awakeable = json.loads(out) if status == 200 else None
            if awakeable:
                status, _ = call(server.ingress, "POST", f"/restate/awakeables/{awakeable}/resolve",
                                 json.dumps(box).encode(), {"content-type": "application/json"})
                if status in (200, 202):
                    return True
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.05)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--perdure-bin", default=os.environ.get("PERDURE_BIN", str(TARGET / "release/perdure")))
    ap.add_argument("--node", default=os.environ.get("NODE22", "node"))
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="perdure-soak-"))
    bench.log(f"soak: seed {seed}, {args.kills} kills, {args.partitions} partitions, in {work}")

    services_log = open(work / "services.log", "wb")
    services = subprocess.Popen([args.node, str(REPO / "tests/services/ts/services.mjs"), "0", "h1", "soak"],
                                cwd=str(REPO / "tests/services/ts"), stdout=subprocess.PIPE, stderr=services_log,
                                env=dict(os.environ, RESTATE_LOGGING="ERROR"), start_new_session=True)
    port = int(services.stdout.readline().decode().split()[1])
    server = Server(args, work / "data", work / "server.log")
    server.start()
    status, out = bench.http_call(server.admin, "POST", "/deployments",
                                  json.dumps({"uri": f"http://127.0.0.1:{port}", "use_http_11": True}).encode(), timeout=30)
    assert status in (200, 201), (status, out)

    stop = threading.Event()
    lock = threading.Lock()
    adds: dict[str, int] = {}      # counter key -> acknowledged adds
    visitors: list[str] = []       # greetAndCount names
    outputs: list[tuple[str, str, str | None]] = []  # (invocation id, kind, expected output) that must complete

    def client(n: int):
        i = 0
        while not stop.is_set():
            i += 1
            kind = rng.choice(["add", "add", "visit", "workflow", "sleep", "awakeable"])
            key = f"c{n}-{i}"
            if kind == "add":
                counter = f"k{rng.randrange(20)}"
                if until_acknowledged(server, f"/Counter/{counter}/add/send", "1", key, stop):
                    with lock:
                        adds[counter] = adds.get(counter, 0) + 1
            elif kind == "visit":
                name = f"visitor-{key}"
                if until_acknowledged(server, "/Greeter/greetAndCount/send", json.dumps(name), key, stop):
                    with lock:
                        visitors.append(name)
            elif kind == "workflow":
                inv = until_acknowledged(server, f"/SleepWorkflow/wf-{key}/run/send", "200", None, stop)
                if inv:
                    with lock:
                        outputs.append((inv, "workflow", None))
            elif kind == "awakeable":
                box = f"box-{key}"
                inv = until_acknowledged(server, "/Waiter/awaitAwakeable/send", json.dumps(box), key, stop)
                if inv and resolve(server, box, stop):
                    with lock:
                        outputs.append((inv, "awakeable", f"got {box}"))
            else:
                inv = until_acknowledged(server, "/Greeter/sleepy/send", "300", key, stop)
                if inv:
                    with lock:
                        outputs.append((inv, "sleep", None))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    for k in range(args.kills):
        time.sleep(rng.uniform(0.05, 0.6))
        server.kill()
        server.start()
        if (k + 1) % 25 == 0:
            bench.log(f"soak: {k + 1} kills, {sum(adds.values())} adds, {len(visitors)} visits, {len(outputs)} sleeps/workflows acknowledged")
    stop.set()
    for t in threads:
        t.join()
    soak_s = time.monotonic() - t0

    # Everything acknowledged must complete, exactly once.
    deadline = time.monotonic() + 300
    missing = list(outputs)
    wrong_outputs = []
    while missing and time.monotonic() < deadline:
        still = []
        for inv, kind, expected in missing:
            try:
                status, body = call(server.ingress, "GET", f"/restate/invocation/{inv}/output", None, {})
            except (OSError, http.client.HTTPException):
                status, body = 0, b""
            if status != 200:
                still.append((inv, kind, expected))
            elif expected is not None and json.loads(body) != expected:
                wrong_outputs.append((inv, body.decode(errors="replace")))
        missing = still
        if missing:
            time.sleep(0.5)

    def count(key: str) -> int:
        for _ in range(600):
            try:
                status, out = call(server.ingress, "GET", f"/Counter/{key}/get", None, {})
                if status == 200:
                    return int(json.loads(out))
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.5)
        return -1

    wrong_adds = {}
    settle = time.monotonic() + 120
    for key, n in adds.items():
        got = count(key)
        while got < n and time.monotonic() < settle:  # sends still running
            time.sleep(0.5)
            got = count(key)
        if got != n:
            wrong_adds[key] = (n, got)
    wrong_visits = [(v, c) for v in visitors if (c := count(v)) != 1]
    server.kill()
    os.killpg(services.pid, signal.SIGKILL)

    report = {
        "seed": seed, "kills": args.kills, "partitions": args.partitions, "soak_seconds": round(soak_s, 1),
        "acknowledged": {"adds": sum(adds.values()), "visits": len(visitors),
                         "workflows": sum(1 for _, k, _ in outputs if k == "workflow"), "sleeps": sum(1 for _, k, _ in outputs if k == "sleep"),
                         "awakeables": sum(1 for _, k, _ in outputs if k == "awakeable")},
        "retried_answers": {str(k): v for k, v in ANSWERS.items()},
        "not_completed": len(missing), "counters_off": wrong_adds, "visits_off": len(wrong_visits),
        "wrong_outputs": wrong_outputs[:10],
    }
    print(json.dumps(report, indent=2))
    ok = not missing and not wrong_adds and not wrong_visits and not wrong_outputs
    bench.log("soak: " + ("every acknowledged invocation completed exactly once" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
