"""perdure's Python test services (restate-sdk 1.2.0, served with hypercorn).

Usage: python services.py [port=0]
hypercorn serves HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on the same port; the SDK
answers discovery over HTTP/2 with BIDI_STREAM and over HTTP/1.1 with REQUEST_RESPONSE.
Prints exactly one line `listening <port>` on stdout once it listens.

Services:
  PyCounter (virtual object): add(n) exclusive -> new count; get shared -> count
  PyOrder (workflow): run(item) sleeps 200 ms, waits on promise "payment", returns
    "<item> paid with <payment>"; pay(how) shared resolves the promise; status shared
"""

import asyncio
import socket
import sys
from datetime import timedelta

import hypercorn.asyncio
import hypercorn.config
import restate
from restate import ObjectContext, ObjectSharedContext, VirtualObject, Workflow, WorkflowContext, WorkflowSharedContext

counter = VirtualObject("PyCounter")


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    count = (await ctx.get("count") or 0) + n
    ctx.set("count", count)
    return count


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count") or 0


order = Workflow("PyOrder")


@order.main()
async def run(ctx: WorkflowContext, item: str) -> str:
    ctx.set("status", "waiting")
    await ctx.sleep(timedelta(milliseconds=200))
    payment = await ctx.promise("payment").value()
    ctx.set("status", "paid")
    return f"{item} paid with {payment}"


@order.handler()
async def pay(ctx: WorkflowSharedContext, how: str) -> str:
    await ctx.promise("payment").resolve(how)
    return "ok"


@order.handler()
async def status(ctx: WorkflowSharedContext) -> str:
    return await ctx.get("status") or "unknown"


app = restate.app(services=[counter, order])


async def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    config = hypercorn.config.Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.loglevel = "WARNING"
    print(f"listening {sock.getsockname()[1]}", flush=True)
    await hypercorn.asyncio.serve(app, config)


if __name__ == "__main__":
    asyncio.run(main())
