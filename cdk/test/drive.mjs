// Runs one CloudFormation custom-resource event through a registration handler, the way
// CloudFormation and the CDK Provider framework do, against a real perdure (the end-to-end
// tests in gateway/tests/e2e/pipelines.rs call it).
//
//   node test/drive.mjs perdure|restate < event.json
//
// perdure: `onEvent`, then `isComplete` every PERDURE_POLL_MS (default 250) until it answers
// complete, its Data merged over onEvent's as the Provider framework merges them.
// restate: `@restatedev/restate-cdk`'s own handler (`register-service-handler/index.mjs`).
// Prints one JSON line, `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`, exit 0 or 1.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const which = process.argv[2];
const event = JSON.parse(readFileSync(0, "utf8"));
const poll = Number(process.env.PERDURE_POLL_MS ?? 250);

async function perdure() {
  const { onEvent, isComplete } = await import(join(here, "..", "handler", "index.mjs"));
  const first = await onEvent(event);
  let merged = { ...event, ...first };
  for (;;) {
    const done = await isComplete(merged);
    merged = { ...merged, Data: { ...merged.Data, ...done.Data } };
    if (done.IsComplete) return { PhysicalResourceId: merged.PhysicalResourceId, Data: merged.Data ?? {} };
    await new Promise((r) => setTimeout(r, poll));
  }
}

async function restate() {
  const file = join(here, "..", "node_modules", "@restatedev", "restate-cdk", "dist", "register-service-handler", "index.mjs");
  const { handler } = await import(file);
  return (await handler(event)) ?? null;
}

const drivers = { perdure, restate };
if (!drivers[which]) {
  console.log(JSON.stringify({ ok: false, error: `usage: drive.mjs perdure|restate < event.json (got '${which}')` }));
  process.exit(2);
}
try {
  const result = await drivers[which]();
  console.log(JSON.stringify({ ok: true, result }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: e.message }));
  process.exit(1);
}
