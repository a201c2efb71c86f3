// perdure's TypeScript test services, built on @restatedev/restate-sdk 1.17.2 (needs Node >= 22).
//
// Usage: node services.mjs [port=9080] [mode=h2|h1|h1bidi] [tag=v1] [variant]
//   or, as an AWS Lambda function: handler `services.handler` with PERDURE_SERVICES_MODE=lambda and
//   optional TAG / VARIANT environment variables (the SDK's Lambda handler, request/response).
//   h2     endpoint.listen(port): HTTP/2 cleartext, bidirectional streaming (the SDK's default path)
//   h1     http.createServer(endpoint.http1Handler()) on 127.0.0.1: HTTP/1.1 request/response
//   h1bidi the same with { bidirectional: true }
//   h2tls  http2.createSecureServer on 127.0.0.1 (TLS_KEY_FILE, TLS_CERT_FILE), HTTP/2 by ALPN and
//          HTTP/1.1 for clients that ask for it: an https:// deployment
//   port 0 picks a free port. Once listening, exactly one line `listening <port>` is printed to stdout;
//   the SDK's own log lines go to stderr (level from RESTATE_LOGGING, default INFO).
//   IDENTITY_KEYS (comma-separated publickeyv1_… keys) makes the SDK accept only requests signed
//   with one of them (withIdentityV1); unsigned or wrongly signed requests get 401.
//   tag is echoed by some handlers, so a test can tell which deployment revision answered.
//   variant changes the code the way a new revision might, as comma-separated edits:
//     drop:Greeter.sleepy   the handler is gone      drop:Mailbox   the service is gone
//     flip:Counter.get      a Counter handler turns exclusive <-> shared
//
// Services (names and behaviour follow the services used in Restate's docs):
//   Greeter (service)
//     greet(name)          -> "Hello, <name>!"
//     greetAndCount(name)  -> Counter/<name>/add(1), then "Hello, <name>! You are visitor #<n> (<tag>)"
//     sleepy(ms=2000)      -> durable sleep, returns { slept_ms, finished_on: tag }
//     fail(msg)            -> TerminalError "boom: <msg>" with code 409
//     sideEffect(x)        -> two ctx.run steps, returns "a(<x>)+b(<x>)"
//     callGreet(name)      -> request-response call to Greeter.greet
//     sendGreet(name)      -> one-way call to Greeter.greet, returns "sent"
//     flaky(key)           -> retryable error on the first 2 attempts per key (in this process),
//                             then "ok after 3 attempts"
//   Counter (virtual object, state "count")
//     add(n=1) exclusive   -> count += n, returns the new count
//     get shared           -> count or 0
//     slowAdd(ms=3000)     -> durable sleep while holding the key, then count += 1
//     reset                -> clears all state
//     whoami shared        -> tag (which deployment serves this key)
//   SleepWorkflow (workflow)
//     run(ms=2000)         -> status "sleeping", durable sleep, status "done", returns "woke up (<tag>)"
//     status shared        -> status or "unknown"
//   Mailbox (virtual object): put(value), take (shared) -> value or null
//   Waiter (service): awaitAwakeable(box), resolveAwakeable({id, value}), cancellable(box),
//     parent(box), generic(name), sendDelayed({box, ms}), attachTo(invocationId), callFail(msg),
//     awaitSignal(box), sendSignal({id, value}), combinators()
//   Approval (workflow): run(what) waits on promise "decision"; decide(v), peek, status (shared)
import * as restate from "@restatedev/restate-sdk";
import * as restateLambda from "@restatedev/restate-sdk/lambda";
import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";

const nodeMajor = Number(process.versions.node.split(".")[0]);
if (nodeMajor < 22) {
  process.stderr.write(
    `services.mjs needs Node >= 22 (running ${process.version}); use scripts/setup-node.sh --print-node\n`,
  );
  process.exit(1);
}

const lambdaMode = process.env.PERDURE_SERVICES_MODE === "lambda";
const [portArg = "9080", mode = "h2", tag = "v1", variantArg = ""] = lambdaMode
  ? ["0", "lambda", process.env.TAG ?? "v1", process.env.VARIANT ?? ""]
  : process.argv.slice(2);
const edits = variantArg.split(",").filter(Boolean).map((e) => e.split(":"));
const dropped = new Set(edits.filter(([op]) => op === "drop").map(([, what]) => what));
const flipped = new Set(edits.filter(([op]) => op === "flip").map(([, what]) => what));
for (const [op] of edits) {
  if (op !== "drop" && op !== "flip") {
    process.stderr.write(`invalid variant edit: ${op} (expected drop:... or flip:...)\n`);
    process.exit(2);
  }
}
// The handlers of `service` that this variant keeps; `shared` names the object handlers that
// are shared (before any flip).
function handlersOf(service, handlers, shared = []) {
  const out = {};
  for (const [name, fn] of Object.entries(handlers)) {
    const full = `${service}.${name}`;
    if (dropped.has(full)) continue;
    out[name] = shared.includes(name) !== flipped.has(full) ? restate.handlers.object.shared(fn) : fn;
  }
  return out;
}
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid port: ${portArg}\n`);
  process.exit(2);
}
if (!["h2", "h1", "h1bidi", "h2tls", "lambda"].includes(mode)) {
  process.stderr.write(`invalid mode: ${mode} (expected h2, h1, h1bidi or h2tls)\n`);
  process.exit(2);
}

const withDefault = (value, fallback) => (typeof value === "number" ? value : fallback);

// --- Greeter -------------------------------------------------------------------------------------

const attemptsByKey = new Map();

const greeter = restate.service({
  name: "Greeter",
  handlers: handlersOf("Greeter", {
    greet: async (_ctx, name) => `Hello, ${name}!`,

    greetAndCount: async (ctx, name) => {
      const visitor = await ctx.objectClient({ name: "Counter" }, name).add(1);
      return `Hello, ${name}! You are visitor #${visitor} (${tag})`;
    },

    sleepy: async (ctx, ms) => {
      const started = await ctx.date.now();
      await ctx.sleep(withDefault(ms, 2000));
      const ended = await ctx.date.now();
      return { slept_ms: ended - started, finished_on: tag };
    },

    fail: async (_ctx, msg) => {
      throw new restate.TerminalError(`boom: ${msg}`, { errorCode: 409 });
    },

    sideEffect: async (ctx, x) => {
      const a = await ctx.run("a", () => `a(${x})`);
      const b = await ctx.run("b", () => `b(${x})`);
      return `${a}+${b}`;
    },

    callGreet: async (ctx, name) => ctx.serviceClient({ name: "Greeter" }).greet(name),

    sendGreet: async (ctx, name) => {
      ctx.serviceSendClient({ name: "Greeter" }).greet(name);
      return "sent";
    },

    // A step of every kind the server traces, and the traceparent this attempt was sent with.
    traced: async (ctx, name) => {
      const stamped = await ctx.run("stamp", () => `${name}`);
      await ctx.sleep(20);
      const greeting = await ctx.serviceClient({ name: "Greeter" }).greet(stamped);
      ctx.serviceSendClient({ name: "Greeter" }).greet(`${name} again`);
      const headers = ctx.request().attemptHeaders;
      const traceparent = typeof headers.get === "function" ? headers.get("traceparent") : headers["traceparent"];
      return { greeting, traceparent: traceparent ?? null };
    },

    flaky: async (_ctx, key) => {
      const id = String(key);
      const attempt = (attemptsByKey.get(id) ?? 0) + 1;
      attemptsByKey.set(id, attempt);
      if (attempt <= 2) {
        throw new Error(`flaky: attempt ${attempt} for ${id} fails`);
      }
      return `ok after ${attempt} attempts`;
    },
  }),
});

// --- Counter -------------------------------------------------------------------------------------

const readCount = async (ctx) => (await ctx.get("count")) ?? 0;

const counter = restate.object({
  name: "Counter",
  handlers: handlersOf("Counter", {
    add: async (ctx, n) => {
      const count = (await readCount(ctx)) + withDefault(n, 1);
      ctx.set("count", count);
      return count;
    },

    get: async (ctx) => readCount(ctx),

    slowAdd: async (ctx, ms) => {
      await ctx.sleep(withDefault(ms, 3000));
      const count = (await readCount(ctx)) + 1;
      ctx.set("count", count);
      return count;
    },

    reset: async (ctx) => {
      ctx.clearAll();
    },

    whoami: async (_ctx) => tag,
  }, ["get", "whoami"]),
});

// --- SleepWorkflow -------------------------------------------------------------------------------

const sleepWorkflow = restate.workflow({
  name: "SleepWorkflow",
  handlers: {
    run: async (ctx, ms) => {
      ctx.set("status", "sleeping");
      await ctx.sleep(withDefault(ms, 2000));
      ctx.set("status", "done");
      return `woke up (${tag})`;
    },

    status: async (ctx) => (await ctx.get("status")) ?? "unknown",
  },
});

// --- Mailbox, Waiter, Approval: awakeables, cancellation, promises, attach ---------------------

// A keyed slot the tests read to learn values a handler produced (e.g. an awakeable id).
const mailbox = restate.object({
  name: "Mailbox",
  handlers: {
    put: async (ctx, value) => {
      ctx.set("value", value);
    },
    take: restate.handlers.object.shared(async (ctx) => (await ctx.get("value")) ?? null),
  },
});

const waiter = restate.service({
  name: "Waiter",
  handlers: {
    // Creates an awakeable, posts its id to Mailbox/<box>, waits for it.
    awaitAwakeable: async (ctx, box) => {
      const { id, promise } = ctx.awakeable();
      ctx.objectSendClient({ name: "Mailbox" }, box).put(id);
      return `got ${await promise}`;
    },
    resolveAwakeable: async (ctx, { id, value }) => {
      ctx.resolveAwakeable(id, value);
      return "resolved";
    },
    // Sleeps a minute; when cancelled, compensates (visible in Mailbox/<box>) and ends cancelled.
    cancellable: async (ctx, box) => {
      try {
        await ctx.sleep(60_000);
        return "slept";
      } catch (e) {
        if (e instanceof restate.CancelledError) {
          await ctx.run("compensate", () => "undone");
          ctx.objectSendClient({ name: "Mailbox" }, box).put("compensated");
        }
        throw e;
      }
    },
    // Calls `cancellable` (posting the child's id to Mailbox/<box>) and waits: for kill cascades.
    parent: async (ctx, box) => {
      const call = ctx.serviceClient({ name: "Waiter" }).cancellable(`${box}-child`);
      ctx.objectSendClient({ name: "Mailbox" }, box).put(await call.invocationId);
      return call;
    },
    generic: async (ctx, name) =>
      ctx.genericCall({
        service: "Greeter",
        method: "greet",
        parameter: name,
        inputSerde: restate.serde.json,
        outputSerde: restate.serde.json,
      }),
    // Delayed one-way call from a handler: Mailbox/<box> becomes "delivered" after `ms`.
    sendDelayed: async (ctx, { box, ms }) => {
      ctx.objectSendClient({ name: "Mailbox" }, box).put("delivered", restate.rpc.sendOpts({ delay: ms }));
      return "scheduled";
    },
    attachTo: async (ctx, invocationId) => ctx.invocation(invocationId).attach(),
    // A terminal failure of a callee reaches the caller as a TerminalError with its code.
    callFail: async (ctx, msg) => {
      try {
        await ctx.serviceClient({ name: "Greeter" }).fail(msg);
        return "no error";
      } catch (e) {
        return `caught ${e.code}: ${e.message}`;
      }
    },
    // Combinators: a race between a short sleep and an awakeable nobody resolves, then all of
    // three concurrent steps.
    combinators: async (ctx) => {
      const never = ctx.awakeable();
      const first = await restate.RestatePromise.race([ctx.sleep(200).map(() => "timeout"), never.promise]);
      const [a, b, c] = await restate.RestatePromise.all([
        ctx.sleep(100).map(() => "s100"),
        ctx.sleep(150).map(() => "s150"),
        ctx.run("step", () => "ran"),
      ]);
      return `${first}; ${a}+${b}+${c}`;
    },
    // Named signals: post our own id to Mailbox/<box>, then wait for signal "go".
    awaitSignal: async (ctx, box) => {
      ctx.objectSendClient({ name: "Mailbox" }, box).put(ctx.request().id);
      return `signalled ${await ctx.signal("go")}`;
    },
    sendSignal: async (ctx, { id, value }) => {
      ctx.invocation(id).signal("go").resolve(value);
      return "sent";
    },
  },
});

// A workflow waiting on a durable promise that a shared handler resolves.
const approval = restate.workflow({
  name: "Approval",
  handlers: {
    run: async (ctx, what) => {
      ctx.set("status", "waiting");
      const decision = await ctx.promise("decision");
      ctx.set("status", "decided");
      return `${what}: ${decision}`;
    },
    decide: async (ctx, decision) => {
      await ctx.promise("decision").resolve(decision);
      return "ok";
    },
    peek: async (ctx) => (await ctx.promise("decision").peek()) ?? null,
    status: async (ctx) => (await ctx.get("status")) ?? "unknown",
  },
});

// --- Endpoint ------------------------------------------------------------------------------------

// Same filtering as the SDK's console logger, but everything goes to stderr so that stdout carries
// only the `listening <port>` line.
const LEVELS = { trace: 1, debug: 2, info: 3, warn: 4, error: 5 };
const minLevel = LEVELS[(process.env.RESTATE_LOGGING ?? "info").toLowerCase()] ?? LEVELS.info;

function stderrLogger(meta, message, ...rest) {
  if (meta.replaying || (LEVELS[meta.level] ?? LEVELS.info) < minLevel) return;
  const where = meta.context ? `[${meta.context.invocationTarget}][${meta.context.invocationId}]` : "";
  const extra = rest.map((r) => (r instanceof Error ? r.stack ?? r.message : String(r)));
  const text = message instanceof Error ? message.stack ?? message.message : String(message);
  process.stderr.write(
    `[restate][${new Date().toISOString()}]${where} ${meta.level.toUpperCase()}: ${[text, ...extra].join(" ")}\n`,
  );
}

const endpoint = (lambdaMode ? restateLambda : restate).endpoint().setLogger(stderrLogger);
const identityKeys = (process.env.IDENTITY_KEYS ?? "").split(",").filter((k) => k.trim() !== "");
if (identityKeys.length > 0) endpoint.withIdentityV1(...identityKeys);
for (const service of [greeter, counter, sleepWorkflow, mailbox, waiter, approval]) {
  if (!dropped.has(service.name)) endpoint.bind(service);
}

/** The Lambda handler (PERDURE_SERVICES_MODE=lambda). */
export const handler = lambdaMode ? endpoint.handler() : undefined;

function announce(actualPort) {
  process.stdout.write(`listening ${actualPort}\n`);
}

if (lambdaMode) {
  // Served by the Lambda runtime through `handler`.
} else if (mode === "h2") {
  announce(await endpoint.listen(port));
} else if (mode === "h2tls") {
  const tls = { key: fs.readFileSync(process.env.TLS_KEY_FILE), cert: fs.readFileSync(process.env.TLS_CERT_FILE) };
  const server = http2.createSecureServer({ ...tls, allowHTTP1: true }, endpoint.handler());
  server.on("error", (err) => {
    process.stderr.write(`listen failed: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, "127.0.0.1", () => announce(server.address().port));
} else {
  const server = http.createServer(endpoint.http1Handler({ bidirectional: mode === "h1bidi" }));
  server.on("error", (err) => {
    process.stderr.write(`listen failed: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, "127.0.0.1", () => announce(server.address().port));
}

for (const signal of lambdaMode ? [] : ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
