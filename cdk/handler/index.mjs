// The custom-resource handler behind `PerdureDeployment` (Node 22, no dependencies beyond the
// AWS SDK v3 that the Lambda runtime carries, and only when an auth token secret is used).
//
// It runs under the CDK Provider framework: `onEvent` registers the function version (or alias)
// with perdure's admin API, smoke-tests it, ramps or promotes it and retires superseded
// deployments that have drained; `isComplete` waits, if asked to, for the rest to drain and
// for a destroyed deployment to become removable. Every failure names what perdure answered.

const DRAINED = new Set(["drained", "inactive"]);

/** CloudFormation hands every property over as a string. */
export function settings(props) {
  const bool = (v, dflt) => (v === undefined || v === "" ? dflt : String(v) === "true");
  const num = (name, v, dflt) => {
    if (v === undefined || v === "") return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number >= 0, got '${v}'`);
    return n;
  };
  if (!props.adminUrl) throw new Error("adminUrl is required");
  if (!props.functionArn) throw new Error("functionArn is required");
  const arn = String(props.functionArn);
  const parts = arn.split(":");
  if (parts.length !== 8 || parts[5] !== "function") {
    throw new Error(`functionArn must be a qualified Lambda ARN (…:function:NAME:VERSION or :ALIAS), got '${arn}'`);
  }
  const rampPercent = num("rampPercent", props.rampPercent, undefined);
  if (rampPercent !== undefined && (rampPercent < 1 || rampPercent > 99 || !Number.isInteger(rampPercent))) {
    throw new Error(`rampPercent must be a whole number from 1 to 99, got '${props.rampPercent}'`);
  }
  let smokeTest;
  if (props.smokeTest) {
    smokeTest = typeof props.smokeTest === "string" ? JSON.parse(props.smokeTest) : props.smokeTest;
    if (!smokeTest.service || !smokeTest.handler) throw new Error("smokeTest needs 'service' and 'handler'");
    if (!props.ingressUrl) throw new Error("smokeTest needs ingressUrl");
  }
  const removalPolicy = props.removalPolicy ?? "retain";
  if (!["retain", "destroy"].includes(removalPolicy)) {
    throw new Error(`removalPolicy must be 'retain' or 'destroy', got '${removalPolicy}'`);
  }
  return {
    adminUrl: String(props.adminUrl).replace(/\/+$/, ""),
    ingressUrl: props.ingressUrl ? String(props.ingressUrl).replace(/\/+$/, "") : undefined,
    functionArn: arn,
    // The function without its qualifier: every version and alias of it shares this prefix.
    unqualifiedArn: parts.slice(0, 7).join(":"),
    assumeRoleArn: props.assumeRoleArn || undefined,
    authTokenSecretArn: props.authTokenSecretArn || undefined,
    promote: bool(props.promote, true),
    rampPercent,
    smokeTest,
    retire: props.retireKeep !== undefined && props.retireKeep !== "",
    retireKeep: num("retireKeep", props.retireKeep, 0),
    waitForDrainSeconds: num("waitForDrainSeconds", props.waitForDrainSeconds, 0),
    removalPolicy,
    breaking: bool(props.breaking, false),
    healthAttempts: num("healthAttempts", props.healthAttempts, 8),
  };
}

/** The admin API, with the bearer token if one is configured. */
export class Admin {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  async call(method, path, body, { ok = [200, 201, 202] } = {}) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (e) {
      throw new Error(`perdure admin API ${method} ${this.baseUrl}${path}: ${e.cause?.message ?? e.message}`);
    }
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!ok.includes(res.status)) {
      const message = json?.message ?? text.slice(0, 500) ?? res.statusText;
      const err = new Error(`perdure refused ${method} ${path} (${res.status}): ${message}`);
      err.status = res.status;
      err.body = json;
      throw err;
    }
    return { status: res.status, json };
  }

  /** `GET /health` with exponential backoff: perdure may still be starting. */
  async waitHealthy(attempts, sleep = delay) {
    let last;
    for (let i = 0; i < Math.max(1, attempts); i++) {
      try {
        return await this.call("GET", "/health");
      } catch (e) {
        last = e;
        if (e.status === 401) break; // a wrong token does not get better with time
        if (i + 1 < attempts) await sleep(Math.min(1000 * 2 ** i, 10_000));
      }
    }
    throw new Error(`perdure is not healthy at ${this.baseUrl}: ${last.message}`);
  }
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function authToken(secretArn) {
  if (!secretArn) return undefined;
  const { SecretsManagerClient, GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretArn }));
  const token = out.SecretString?.trim();
  if (!token) throw new Error(`the auth token secret ${secretArn} has no string value`);
  return token;
}

async function admin(s) {
  return new Admin(s.adminUrl, await authToken(s.authTokenSecretArn));
}

/** The physical id names the function, not a version: a new version is an update in place. */
function physicalId(s) {
  return `perdure:${s.unqualifiedArn}`;
}

async function smokeTest(s, deploymentId) {
  const t = s.smokeTest;
  const path = [t.service, t.key, t.handler].filter((p) => p !== undefined && p !== "").map(encodeURIComponent).join("/");
  const url = `${s.ingressUrl}/${path}`;
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-perdure-deployment": deploymentId },
      body: JSON.stringify(t.body ?? null),
      signal: AbortSignal.timeout((t.timeoutSeconds ?? 60) * 1000),
    });
  } catch (e) {
    throw new Error(`smoke test POST ${url} on ${deploymentId}: ${e.cause?.message ?? e.message}`);
  }
  const text = await res.text();
  if (res.status < 200 || res.status > 299) {
    throw new Error(`smoke test POST ${url} on ${deploymentId} failed (${res.status}): ${text.slice(0, 500)}`);
  }
  if (t.expect !== undefined && JSON.stringify(JSON.parse(text || "null")) !== JSON.stringify(t.expect)) {
    throw new Error(`smoke test POST ${url} on ${deploymentId} answered ${text.slice(0, 500)}, expected ${JSON.stringify(t.expect)}`);
  }
  return text;
}

/**
 * Superseded deployments: others serving one of the new deployment's services, newest first,
 * past the `keep` newest. Those drained are removed (guarded: perdure refuses if work got
 * pinned meanwhile); the rest are reported as draining.
 */
async function retire(api, s, deploymentId) {
  const { json } = await api.call("GET", "/deployments");
  const mine = json.deployments.find((d) => d.id === deploymentId);
  const names = new Set((mine?.services ?? []).map((x) => x.name));
  const superseded = json.deployments
    .filter((d) => d.id !== deploymentId && d.services.some((x) => names.has(x.name)))
    .filter((d) => (d.latest_for ?? []).length === 0)
    .sort((a, b) => b.created_at.localeCompare(a.created_at))
    .slice(s.retireKeep);
  const retired = [];
  const draining = [];
  for (const d of superseded) {
    if (!DRAINED.has(d.drain_status)) {
      draining.push(d.id);
      continue;
    }
    try {
      await api.call("DELETE", `/deployments/${encodeURIComponent(d.id)}`, undefined, { ok: [200, 202, 204, 404] });
      retired.push(d.id);
    } catch (e) {
      if (e.status !== 409) throw e;
      draining.push(d.id); // something got pinned to it since the listing
    }
  }
  return { retired, draining };
}

async function createOrUpdate(event) {
  const s = settings(event.ResourceProperties);
  const api = await admin(s);
  await api.waitHealthy(s.healthAttempts);
  // Straight to all traffic only when neither a smoke test nor a ramp comes first.
  const promoteNow = s.promote && s.rampPercent === undefined && !s.smokeTest;
  const { json: registered } = await api.call("POST", "/deployments", {
    arn: s.functionArn,
    ...(s.assumeRoleArn ? { assume_role_arn: s.assumeRoleArn } : {}),
    breaking: s.breaking,
    promote: promoteNow,
  });
  const id = registered.id;
  const services = registered.services.map((x) => x.name);
  if (s.smokeTest) await smokeTest(s, id);
  for (const name of services) {
    const path = `/services/${encodeURIComponent(name)}`;
    if (s.rampPercent !== undefined) {
      await api.call("POST", `${path}/ramp`, { deployment: id, percent: s.rampPercent, breaking: s.breaking });
    } else if (s.promote) {
      // Also after a plain registration: re-registering a known version (an update that only
      // went back, e.g. a CloudFormation rollback) does not move traffic by itself.
      await api.call("POST", `${path}/promote`, { deployment: id, breaking: s.breaking });
    }
  }
  const { json: detail } = await api.call("GET", `/deployments/${encodeURIComponent(id)}`);
  const revisions = detail.services.map((x) => `${x.name}=${x.revision}`).join(",");
  const { retired, draining } = s.retire ? await retire(api, s, id) : { retired: [], draining: [] };
  return {
    PhysicalResourceId: physicalId(s),
    Data: {
      DeploymentId: id,
      Revisions: revisions,
      Services: services.join(","),
      Retired: retired.join(","),
      Draining: draining.join(","),
      StartedAt: String(Date.now()),
    },
  };
}

/** The deployments of this function (any version or alias of it). */
async function deploymentsOf(api, s) {
  const { json } = await api.call("GET", "/deployments");
  return json.deployments.filter((d) => d.arn === s.functionArn || d.arn?.startsWith(`${s.unqualifiedArn}:`));
}

/**
 * Destroy: each deployment of the function goes once nothing is pinned to it. It may still be
 * the latest for its services (the stack takes them away), so it is removed with `force`, but
 * only after perdure reports no pinned invocation, which no forced removal would end.
 */
async function destroy(api, s) {
  const held = [];
  for (const d of await deploymentsOf(api, s)) {
    const { json } = await api.call("GET", `/deployments/${encodeURIComponent(d.id)}`);
    const pinned = json.pinned_invocations?.total ?? 0;
    if (pinned > 0) {
      held.push(`${d.id} (${pinned} pinned invocations, ${json.drain_status})`);
      continue;
    }
    await api.call("DELETE", `/deployments/${encodeURIComponent(d.id)}?force=true`, undefined, { ok: [200, 202, 204, 404] });
  }
  return held;
}

export async function onEvent(event) {
  switch (event.RequestType) {
    case "Create":
    case "Update":
      return createOrUpdate(event);
    case "Delete": {
      const s = settings(event.ResourceProperties);
      if (s.removalPolicy === "retain") return { PhysicalResourceId: event.PhysicalResourceId };
      const held = await destroy(await admin(s), s);
      if (held.length > 0 && s.waitForDrainSeconds === 0) {
        throw new Error(`perdure still has work pinned to ${held.join(", ")}: not removed (set waitForDrain to wait for it)`);
      }
      return { PhysicalResourceId: event.PhysicalResourceId, Data: { StartedAt: String(Date.now()) } };
    }
    default:
      throw new Error(`unknown RequestType '${event.RequestType}'`);
  }
}

/**
 * Called again and again (the Provider's query interval) after `onEvent` until it answers
 * complete. Create/Update: retires superseded deployments as they drain, until none drains or
 * waitForDrain has passed (then it completes and reports those still draining). Delete: removes
 * the function's deployments as they drain; past waitForDrain it fails naming what holds them.
 */
export async function isComplete(event) {
  const s = settings(event.ResourceProperties);
  const started = Number(event.Data?.StartedAt ?? Date.now());
  const timeUp = Date.now() - started >= s.waitForDrainSeconds * 1000;
  if (event.RequestType === "Delete") {
    if (s.removalPolicy === "retain") return { IsComplete: true };
    const held = await destroy(await admin(s), s);
    if (held.length === 0) return { IsComplete: true };
    if (timeUp) throw new Error(`perdure still has work pinned to ${held.join(", ")} after ${s.waitForDrainSeconds}s: not removed`);
    return { IsComplete: false };
  }
  const id = event.Data?.DeploymentId;
  if (!s.retire || !id || s.waitForDrainSeconds === 0) return { IsComplete: true };
  const { draining } = await retire(await admin(s), s, id);
  // Each call sees onEvent's Data: what drained since then is what it reported draining and
  // no longer drains (removed now or by an earlier call).
  const list = (v) => (v ? v.split(",") : []);
  const gone = list(event.Data.Draining).filter((d) => !draining.includes(d));
  const data = { ...event.Data, Retired: [...list(event.Data.Retired), ...gone].join(","), Draining: draining.join(",") };
  return { IsComplete: draining.length === 0 || timeUp, Data: data };
}
