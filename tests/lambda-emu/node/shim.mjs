// A Lambda Runtime API client for Node.js handlers, for perdure's Lambda emulator: imports
// `_HANDLER` (`file.export`) from `LAMBDA_TASK_ROOT` and serves invocations one at a time.
import { pathToFileURL } from "node:url";
import { existsSync } from "node:fs";
import path from "node:path";

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const [file, exportName = "handler"] = (process.env._HANDLER ?? "index.handler").split(/\.(?=[^.]+$)/);
const root = process.env.LAMBDA_TASK_ROOT ?? process.cwd();

const post = (url, body) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const errorBody = (e, type) => ({
  errorType: type ?? e?.name ?? "Error",
  errorMessage: e?.message ?? String(e),
  stackTrace: String(e?.stack ?? "").split("\n").slice(1).map((l) => l.trim()),
});

let handler;
try {
  const found = [".mjs", ".js", ".cjs"].map((ext) => path.join(root, file + ext)).find((p) => existsSync(p));
  if (!found) throw Object.assign(new Error(`Cannot find module '${file}' in ${root}`), { name: "Runtime.ImportModuleError" });
  const mod = await import(pathToFileURL(found).href);
  handler = mod[exportName] ?? mod.default?.[exportName];
  if (typeof handler !== "function") {
    throw Object.assign(new Error(`${file}.${exportName} is undefined or not exported`), { name: "Runtime.HandlerNotFound" });
  }
} catch (e) {
  await post(`${api}/init/error`, errorBody(e, e?.name?.startsWith("Runtime.") ? e.name : "Runtime.ImportModuleError"));
  process.exit(1);
}

for (;;) {
  let next;
  try {
    next = await fetch(`${api}/invocation/next`);
  } catch {
    continue; // undici gives up on an idle request after 300 s: poll again
  }
  const id = next.headers.get("lambda-runtime-aws-request-id");
  const deadline = Number(next.headers.get("lambda-runtime-deadline-ms"));
  const event = JSON.parse((await next.text()) || "null");
  const clientContext = next.headers.get("lambda-runtime-client-context");
  const context = {
    awsRequestId: id,
    invokedFunctionArn: next.headers.get("lambda-runtime-invoked-function-arn"),
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: clientContext ? JSON.parse(clientContext) : undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const result = await (handler.length >= 3
      ? new Promise((resolve, reject) => handler(event, context, (err, value) => (err ? reject(err) : resolve(value))))
      : handler(event, context));
    await post(`${api}/invocation/${id}/response`, result ?? null);
  } catch (e) {
    await post(`${api}/invocation/${id}/error`, errorBody(e));
  }
}
