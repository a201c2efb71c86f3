//! A local AWS Lambda emulator for perdure's tests and benchmarks: real function code (a
//! `lambda_runtime` binary, or a Node.js handler through `node/shim.mjs`) behind the Lambda API
//! subset perdure calls, with what no off-the-shelf emulator offers without Docker: qualifiers on
//! Invoke and the `X-Amz-Executed-Version` header, so pinning to a version can be tested.
//!
//! Layout:
//! - [`Emulator`]: one HTTP port (`127.0.0.1:0`) serving Lambda's REST API (Invoke,
//!   GetFunction, GetFunctionConfiguration, ListVersionsByFunction, Get/List/Create/Update/
//!   DeleteAlias), STS `AssumeRole` and Secrets Manager `GetSecretValue` (for the CDK
//!   construct's auth token secret); set-up calls from Rust (functions, published versions,
//!   aliases that a test moves, injected throttling) and counters of what ran where.
//! - Execution environments: one child process per (function, version) invocation slot, started
//!   on demand and kept warm, each with its own Runtime API listener (`AWS_LAMBDA_RUNTIME_API`).
//!   An environment runs one invocation at a time; a version scales out to `max_environments`,
//!   beyond that invocations queue. A timeout or crash kills the environment (the next invoke
//!   cold-starts) and answers 200 with `X-Amz-Function-Error: Unhandled`, as Lambda does.
//!
//! The `perdure-lambda-emu` binary serves functions from a JSON file:
//! ```json
//! {"functions": [{"name": "greeter",
//!   "versions": [{"program": "/path/to/bootstrap", "args": [], "env": {"TAG": "v1"}, "timeout_secs": 30, "max_environments": 4},
//!                {"node": "/path/to/node", "dir": "/path/to/app", "handler": "services.handler", "env": {}}],
//!   "aliases": {"live": "1"}}]}
//! ```
//! Each entry of `versions` is published in order (versions 1, 2, …); the last is also `$LATEST`.
//! Aliases move with the UpdateAlias call (`PUT /2015-03-31/functions/NAME/aliases/ALIAS`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// Lambda's synchronous payload limit.
const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// How a function's code runs.
#[derive(Clone, Debug)]
pub enum Runtime {
    /// An executable speaking the Lambda Runtime API (a `lambda_runtime` binary, a bootstrap).
    Binary { program: PathBuf, args: Vec<String> },
    /// A Node.js handler `file.export` under `dir`, run through `node/shim.mjs`.
    Node { node: PathBuf, dir: PathBuf, handler: String },
}

/// A function's code and configuration (a published version is an immutable copy).
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    pub runtime: Runtime,
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Environments a version may run at once.
    pub max_environments: usize,
}

impl FunctionSpec {
    pub fn binary(program: impl Into<PathBuf>) -> Self {
        Self::new(Runtime::Binary { program: program.into(), args: Vec::new() })
    }

    pub fn node(node: impl Into<PathBuf>, dir: impl Into<PathBuf>, handler: &str) -> Self {
        Self::new(Runtime::Node { node: node.into(), dir: dir.into(), handler: handler.to_owned() })
    }

    fn new(runtime: Runtime) -> Self {
        Self { runtime, env: BTreeMap::new(), timeout: Duration::from_secs(30), memory_mb: 128, max_environments: 4 }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn max_environments(mut self, n: usize) -> Self {
        self.max_environments = n.max(1);
        self
    }

    fn runtime_name(&self) -> &'static str {
        match self.runtime {
            Runtime::Binary { .. } => "provided.al2023",
            Runtime::Node { .. } => "nodejs22.x",
        }
    }

    fn handler(&self) -> String {
        match &self.runtime {
            Runtime::Binary { .. } => "bootstrap".into(),
            Runtime::Node { handler, .. } => handler.clone(),
        }
    }

    fn code_sha(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}{:?}", self.runtime, self.env).hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// A failure injected before the next invocations reach any runtime.
#[derive(Clone, Copy, Debug)]
pub enum Injected {
    /// 429 `TooManyRequestsException`.
    Throttle,
    /// 500 `ServiceException`.
    ServiceError,
}

struct Alias {
    version: String,
    additional: Vec<(String, f64)>,
    revision: u64,
}

struct Function {
    latest: FunctionSpec,
    versions: BTreeMap<u64, FunctionSpec>,
    aliases: BTreeMap<String, Alias>,
}

impl Function {
    fn spec(&self, version: &str) -> Option<&FunctionSpec> {
        if version == "$LATEST" { Some(&self.latest) } else { self.versions.get(&version.parse().ok()?) }
    }
}

#[derive(Default)]
struct Registry {
    functions: BTreeMap<String, Function>,
    invocations: HashMap<(String, String), u64>,
    injected: HashMap<String, VecDeque<Injected>>,
    roles: Vec<String>,
    /// Secrets Manager secrets by name (a SecretId is the name or an ARN ending in it).
    secrets: BTreeMap<String, String>,
    /// Warm environments per (function, version), and the slots bounding how many run.
    pools: HashMap<(String, String), Arc<Pool>>,
}

struct Pool {
    slots: Semaphore,
    idle: Mutex<Vec<Environment>>,
}

struct Inner {
    endpoint: String,
    registry: Mutex<Registry>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// The emulator; cheap to clone.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

impl Emulator {
    /// Serves on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Emulator> {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (shutdown, mut stopped) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner { endpoint, registry: Mutex::new(Registry::default()), shutdown });
        let app = axum::Router::new().fallback(api).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(Emulator { inner })
    }

    /// `http://127.0.0.1:PORT`: use as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        self.inner.endpoint.clone()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.registry.lock().expect("registry lock")
    }

    /// Creates (or replaces) a function; its code is `$LATEST`.
    pub fn create_function(&self, name: &str, spec: FunctionSpec) {
        let mut r = self.registry();
        r.functions
            .insert(name.to_owned(), Function { latest: spec, versions: BTreeMap::new(), aliases: BTreeMap::new() });
        r.pools.retain(|(f, _), _| f != name);
    }

    /// New `$LATEST` code and configuration.
    pub fn update_function(&self, name: &str, spec: FunctionSpec) {
        let mut r = self.registry();
        r.functions.get_mut(name).unwrap_or_else(|| panic!("no function {name}")).latest = spec;
        r.pools.remove(&(name.to_owned(), "$LATEST".to_owned()));
    }

    /// Publishes `$LATEST` as the next immutable version; returns its number.
    pub fn publish_version(&self, name: &str) -> String {
        let mut r = self.registry();
        let f = r.functions.get_mut(name).unwrap_or_else(|| panic!("no function {name}"));
        let n = f.versions.keys().next_back().copied().unwrap_or(0) + 1;
        f.versions.insert(n, f.latest.clone());
        n.to_string()
    }

    /// Creates or moves an alias; `additional` are weighted extra versions.
    pub fn set_alias(&self, name: &str, alias: &str, version: &str, additional: &[(&str, f64)]) {
        let mut r = self.registry();
        let f = r.functions.get_mut(name).unwrap_or_else(|| panic!("no function {name}"));
        let revision = f.aliases.get(alias).map_or(1, |a| a.revision + 1);
        let additional = additional.iter().map(|(v, w)| (v.to_string(), *w)).collect();
        f.aliases.insert(alias.to_owned(), Alias { version: version.to_owned(), additional, revision });
    }

    pub fn delete_alias(&self, name: &str, alias: &str) {
        if let Some(f) = self.registry().functions.get_mut(name) {
            f.aliases.remove(alias);
        }
    }

    /// Deletes a published version: invoking it answers 404; its environments stop.
    pub fn delete_version(&self, name: &str, version: &str) {
        let mut r = self.registry();
        if let (Some(f), Ok(n)) = (r.functions.get_mut(name), version.parse::<u64>()) {
            f.versions.remove(&n);
        }
        r.pools.remove(&(name.to_owned(), version.to_owned()));
    }

    /// `arn:aws:lambda:us-east-1:123456789012:function:NAME[:QUALIFIER]`.
    pub fn arn(&self, name: &str, qualifier: Option<&str>) -> String {
        arn(name, qualifier)
    }

    /// RequestResponse invocations that reached a runtime of this version.
    pub fn invocations(&self, name: &str, version: &str) -> u64 {
        self.registry().invocations.get(&(name.to_owned(), version.to_owned())).copied().unwrap_or(0)
    }

    /// The next `n` Invokes of `name` fail with `kind` before reaching a runtime.
    pub fn fail_next(&self, name: &str, n: u32, kind: Injected) {
        let mut r = self.registry();
        let q = r.injected.entry(name.to_owned()).or_default();
        q.extend(std::iter::repeat_n(kind, n as usize));
    }

    /// The role ARNs STS AssumeRole was asked for.
    pub fn assumed_roles(&self) -> Vec<String> {
        self.registry().roles.clone()
    }

    /// A Secrets Manager secret `name` whose `SecretString` is `value`; returns its ARN.
    pub fn put_secret(&self, name: &str, value: &str) -> String {
        self.registry().secrets.insert(name.to_owned(), value.to_owned());
        format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}")
    }

    /// Stops serving and kills every environment.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let pools: Vec<Arc<Pool>> = self.registry().pools.drain().map(|(_, p)| p).collect();
        for pool in pools {
            let envs: Vec<Environment> = std::mem::take(&mut *pool.idle.lock().expect("idle lock"));
            for mut env in envs {
                env.kill().await;
            }
        }
    }
}

fn arn(name: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:{q}"),
        None => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn request_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

// --- HTTP API ----------------------------------------------------------------------------------

/// An API error: status, `x-amzn-ErrorType` and `{"Type","message"}`.
fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "Type": "User", "message": message }).to_string();
    (status, [("x-amzn-ErrorType", code), ("content-type", "application/json")], body).into_response()
}

fn not_found(name: &str, qualifier: Option<&str>) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("Function not found: {}", arn(name, qualifier)),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request) -> HashMap<String, String> {
    form(req.uri().query().unwrap_or(""))
}

fn form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A FunctionName path segment: `name`, `name:q`, `ACCT:function:name[:q]` or a full ARN.
fn function_ref(raw: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = raw.split(':').collect();
    let rest: &[&str] = match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", rest @ ..] => rest,
        [_, "function", rest @ ..] => rest,
        rest => rest,
    };
    match rest {
        [name] if !name.is_empty() => Some((name.to_string(), None)),
        [name, q] if !name.is_empty() && !q.is_empty() => Some((name.to_string(), Some(q.to_string()))),
        _ => None,
    }
}

async fn api(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let emu = Emulator { inner };
    let path = req.uri().path().to_owned();
    let segments: Vec<String> = path.trim_matches('/').split('/').map(percent_decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let q = query(&req);
    if path == "/" && method == Method::POST {
        let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(target) = target {
            let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
            return secrets_manager(&emu, &target, &body);
        }
        let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
        let mut params = form(&String::from_utf8_lossy(&body));
        params.extend(q);
        return sts(&emu, &params);
    }
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 2 * PAYLOAD_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            );
        }
    };
    let ["2015-03-31", "functions", function, rest @ ..] = seg.as_slice() else {
        return api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            &format!("no such operation: {method} {path}"),
        );
    };
    let Some((name, from_name)) = function_ref(function) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("bad FunctionName '{function}'"),
        );
    };
    let qualifier = match (from_name, q.get("Qualifier").cloned()) {
        (Some(a), Some(b)) if a != b => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified qualifier.",
            );
        }
        (a, b) => a.or(b),
    };
    match (method, rest) {
        (Method::POST, ["invocations"]) => invoke(&emu, &name, qualifier.as_deref(), &headers, body).await,
        (Method::GET, []) => configuration(&emu, &name, qualifier.as_deref(), true),
        (Method::GET, ["configuration"]) => configuration(&emu, &name, qualifier.as_deref(), false),
        (Method::GET, ["versions"]) => list_versions(&emu, &name, &q),
        (Method::GET, ["aliases"]) => list_aliases(&emu, &name),
        (Method::POST, ["aliases"]) => put_alias(&emu, &name, None, &body),
        (Method::GET, ["aliases", alias]) => get_alias(&emu, &name, alias, StatusCode::OK),
        (Method::PUT, ["aliases", alias]) => put_alias(&emu, &name, Some(alias), &body),
        (Method::DELETE, ["aliases", alias]) => {
            emu.delete_alias(&name, alias);
            StatusCode::NO_CONTENT.into_response()
        }
        (m, r) => api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            &format!("no such operation: {m} .../{}", r.join("/")),
        ),
    }
}

/// The version a qualifier resolves to now (an alias picks among its weights).
fn resolve(f: &Function, qualifier: Option<&str>) -> Option<String> {
    let q = qualifier.unwrap_or("$LATEST");
    if q == "$LATEST" || q.bytes().all(|b| b.is_ascii_digit()) {
        return f.spec(q).map(|_| q.to_owned());
    }
    let alias = f.aliases.get(q)?;
    let mut roll: f64 = rand::random();
    for (version, weight) in &alias.additional {
        if roll < *weight {
            return Some(version.clone());
        }
        roll -= weight;
    }
    Some(alias.version.clone())
}

fn function_configuration(name: &str, version: &str, spec: &FunctionSpec) -> Value {
    let arn = if version == "$LATEST" { arn(name, None) } else { arn(name, Some(version)) };
    json!({
        "FunctionName": name, "FunctionArn": arn, "Version": version,
        "Runtime": spec.runtime_name(), "Handler": spec.handler(),
        "Role": format!("arn:aws:iam::{ACCOUNT}:role/emu"), "CodeSha256": spec.code_sha(), "CodeSize": 1024,
        "LastModified": "2026-11-22T11:43:27.000+0000", "Timeout": spec.timeout.as_secs().max(1),
        "MemorySize": spec.memory_mb, "State": "Active", "LastUpdateStatus": "Successful", "PackageType": "Zip",
        "Architectures": ["x86_64"], "RevisionId": spec.code_sha(), "Environment": { "Variables": spec.env },
    })
}

fn configuration(emu: &Emulator, name: &str, qualifier: Option<&str>, with_code: bool) -> Response {
    let r = emu.registry();
    let Some(f) = r.functions.get(name) else { return not_found(name, qualifier) };
    let version = match qualifier {
        Some(q) if !q.bytes().all(|b| b.is_ascii_digit()) && q != "$LATEST" => {
            f.aliases.get(q).map(|a| a.version.clone())
        }
        q => Some(q.unwrap_or("$LATEST").to_owned()),
    };
    let Some((version, spec)) = version.and_then(|v| f.spec(&v).map(|s| (v, s))) else {
        return not_found(name, qualifier);
    };
    let config = function_configuration(name, &version, spec);
    let body = if with_code {
        json!({ "Configuration": config, "Code": { "RepositoryType": "S3", "Location": "http://127.0.0.1/none" } })
    } else {
        config
    };
    axum::Json(body).into_response()
}

fn list_versions(emu: &Emulator, name: &str, q: &HashMap<String, String>) -> Response {
    let r = emu.registry();
    let Some(f) = r.functions.get(name) else { return not_found(name, None) };
    let mut all = vec![function_configuration(name, "$LATEST", &f.latest)];
    all.extend(f.versions.iter().map(|(n, s)| function_configuration(name, &n.to_string(), s)));
    let start: usize = q.get("Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
    let max: usize = q.get("MaxItems").and_then(|m| m.parse().ok()).unwrap_or(50).clamp(1, 50);
    let page: Vec<Value> = all.iter().skip(start).take(max).cloned().collect();
    let mut body = json!({ "Versions": page });
    if start + max < all.len() {
        body["NextMarker"] = json!((start + max).to_string());
    }
    axum::Json(body).into_response()
}

fn alias_json(name: &str, alias: &str, a: &Alias) -> Value {
    let mut v = json!({
        "AliasArn": arn(name, Some(alias)), "Name": alias, "FunctionVersion": a.version,
        "Description": "", "RevisionId": format!("rev-{}", a.revision),
    });
    if !a.additional.is_empty() {
        let weights: serde_json::Map<String, Value> = a.additional.iter().map(|(k, w)| (k.clone(), json!(w))).collect();
        v["RoutingConfig"] = json!({ "AdditionalVersionWeights": weights });
    }
    v
}

fn get_alias(emu: &Emulator, name: &str, alias: &str, status: StatusCode) -> Response {
    let r = emu.registry();
    match r.functions.get(name).and_then(|f| f.aliases.get(alias)) {
        Some(a) => (status, axum::Json(alias_json(name, alias, a))).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Alias not found: {}", arn(name, Some(alias))),
        ),
    }
}

fn list_aliases(emu: &Emulator, name: &str) -> Response {
    let r = emu.registry();
    let Some(f) = r.functions.get(name) else { return not_found(name, None) };
    let aliases: Vec<Value> = f.aliases.iter().map(|(n, a)| alias_json(name, n, a)).collect();
    axum::Json(json!({ "Aliases": aliases })).into_response()
}

/// CreateAlias (`alias` None, name in the body) or UpdateAlias.
fn put_alias(emu: &Emulator, name: &str, alias: Option<&str>, body: &[u8]) -> Response {
    let bad = |m: &str| api_error(StatusCode::BAD_REQUEST, "InvalidParameterValueException", m);
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return bad("the body is not JSON") };
    let alias_name = match alias.map(str::to_owned).or_else(|| v["Name"].as_str().map(str::to_owned)) {
        Some(a) => a,
        None => return bad("Name is required"),
    };
    let (version, weights) = {
        let r = emu.registry();
        let Some(f) = r.functions.get(name) else { return not_found(name, None) };
        let current = f.aliases.get(&alias_name);
        let version = v["FunctionVersion"].as_str().map(str::to_owned).or_else(|| current.map(|a| a.version.clone()));
        let Some(version) = version.filter(|ver| f.spec(ver).is_some()) else {
            return bad("FunctionVersion must name a published version");
        };
        let weights: Vec<(String, f64)> = match v["RoutingConfig"]["AdditionalVersionWeights"].as_object() {
            Some(w) => w.iter().filter_map(|(k, w)| Some((k.clone(), w.as_f64()?))).collect(),
            None => current.map(|a| a.additional.clone()).unwrap_or_default(),
        };
        (version, weights)
    };
    let weights: Vec<(&str, f64)> = weights.iter().map(|(k, w)| (k.as_str(), *w)).collect();
    emu.set_alias(name, &alias_name, &version, &weights);
    get_alias(emu, name, &alias_name, if alias.is_some() { StatusCode::OK } else { StatusCode::CREATED })
}

fn sts(emu: &Emulator, params: &HashMap<String, String>) -> Response {
    if params.get("Action").map(String::as_str) != Some("AssumeRole") {
        return (StatusCode::BAD_REQUEST, "only AssumeRole is emulated").into_response();
    }
    let role = params.get("RoleArn").cloned().unwrap_or_default();
    let session = params.get("RoleSessionName").cloned().unwrap_or_else(|| "session".into());
    emu.registry().roles.push(role.clone());
    let role_name = role.rsplit('/').next().unwrap_or("role");
    let xml = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIAEMULATOR</AccessKeyId><SecretAccessKey>emulated-secret</SecretAccessKey><SessionToken>emulated-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAEMULATOR:{session}</AssumedRoleId><Arn>arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{session}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleResponse>"#,
        request_id()
    );
    (StatusCode::OK, [("content-type", "text/xml")], xml).into_response()
}

/// Secrets Manager's JSON 1.1 protocol: only `GetSecretValue`.
fn secrets_manager(emu: &Emulator, target: &str, body: &[u8]) -> Response {
    let error = |status: StatusCode, ty: &str, message: &str| {
        (
            status,
            [("content-type", "application/x-amz-json-1.1")],
            json!({"__type": ty, "message": message}).to_string(),
        )
            .into_response()
    };
    if target != "secretsmanager.GetSecretValue" {
        return error(StatusCode::BAD_REQUEST, "UnknownOperationException", &format!("{target} is not emulated"));
    }
    let id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["SecretId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let name = id.rsplit(":secret:").next().unwrap_or(&id).to_owned();
    let Some(value) = emu.registry().secrets.get(&name).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        );
    };
    let arn = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}");
    let out = json!({"ARN": arn, "Name": name, "SecretString": value, "VersionId": "emulated", "VersionStages": ["AWSCURRENT"], "CreatedDate": now_ms() / 1000});
    (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], out.to_string()).into_response()
}

async fn invoke(emu: &Emulator, name: &str, qualifier: Option<&str>, headers: &HeaderMap, body: Bytes) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (version, spec, pool) = {
        let mut r = emu.registry();
        if let Some(kind) = r.injected.get_mut(name).and_then(VecDeque::pop_front) {
            return match kind {
                Injected::Throttle => {
                    api_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.")
                }
                Injected::ServiceError => {
                    api_error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "injected service error")
                }
            };
        }
        let Some(f) = r.functions.get(name) else { return not_found(name, qualifier) };
        let Some(version) = resolve(f, qualifier) else { return not_found(name, qualifier) };
        let Some(spec) = f.spec(&version).cloned() else { return not_found(name, qualifier) };
        let pool = r
            .pools
            .entry((name.to_owned(), version.clone()))
            .or_insert_with(|| {
                Arc::new(Pool { slots: Semaphore::new(spec.max_environments), idle: Mutex::new(Vec::new()) })
            })
            .clone();
        (version, spec, pool)
    };
    if body.len() > PAYLOAD_LIMIT {
        return api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!("{} byte payload is too large for the RequestResponse invocation type (6291456)", body.len()),
        );
    }
    match header("x-amz-invocation-type").as_deref() {
        Some("DryRun") => return (StatusCode::NO_CONTENT, [("X-Amz-Executed-Version", version)]).into_response(),
        Some("Event") => {
            let (emu, name, invoked) = (
                emu.clone(),
                name.to_owned(),
                qualifier.map(|q| arn(name, Some(q))).unwrap_or_else(|| arn(name, None)),
            );
            let version2 = version.clone();
            tokio::spawn(async move { run(&emu, &name, &version2, &spec, &pool, invoked, None, body).await });
            return (StatusCode::ACCEPTED, [("X-Amz-Executed-Version", version)]).into_response();
        }
        _ => {}
    }
    let invoked = match qualifier {
        Some(q) => arn(name, Some(q)),
        None => arn(name, None),
    };
    let client_context = header("x-amz-client-context")
        .and_then(|c| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, c).ok())
        .and_then(|c| String::from_utf8(c).ok());
    let (payload, failed) = run(emu, name, &version, &spec, &pool, invoked, client_context, body).await;
    let mut response = (StatusCode::OK, [("content-type", "application/json")], payload).into_response();
    let h = response.headers_mut();
    h.insert("x-amz-executed-version", version.parse().expect("a version is a header value"));
    h.insert("x-amzn-requestid", request_id().parse().expect("ascii"));
    if failed {
        h.insert("x-amz-function-error", "Unhandled".parse().expect("ascii"));
    }
    response
}

/// Runs one invocation on an environment of `version`; (payload, whether it is a function error).
#[allow(clippy::too_many_arguments)]
async fn run(
    emu: &Emulator,
    name: &str,
    version: &str,
    spec: &FunctionSpec,
    pool: &Pool,
    invoked: String,
    client_context: Option<String>,
    body: Bytes,
) -> (Bytes, bool) {
    let Ok(_slot) = pool.slots.acquire().await else {
        return (error_payload("Runtime.Unavailable", "the emulator is stopping"), true);
    };
    *emu.registry().invocations.entry((name.to_owned(), version.to_owned())).or_default() += 1;
    let id = request_id();
    let warm = pool.idle.lock().expect("idle lock").pop();
    let mut env = match warm {
        Some(env) => env,
        None => match Environment::start(name, version, spec).await {
            Ok(env) => env,
            Err(e) => return (error_payload("Runtime.StartError", &format!("RequestId: {id} Error: {e}")), true),
        },
    };
    let (tx, rx) = oneshot::channel();
    let event = Event {
        id: id.clone(),
        payload: body,
        invoked,
        client_context,
        deadline_ms: now_ms() + spec.timeout.as_millis() as u64,
        done: tx,
    };
    if env.events.send(event).await.is_err() {
        return (error_payload("Runtime.ExitError", &format!("RequestId: {id} Error: Runtime exited")), true);
    }
    tokio::select! {
        outcome = rx => match outcome {
            Ok(Outcome::Response(bytes)) => {
                pool.idle.lock().expect("idle lock").push(env);
                (bytes, false)
            }
            Ok(Outcome::Error(bytes)) => {
                pool.idle.lock().expect("idle lock").push(env);
                (bytes, true)
            }
            Ok(Outcome::InitError(bytes)) => {
                env.kill().await;
                (bytes, true)
            }
            Err(_) => {
                env.kill().await;
                (error_payload("Runtime.ExitError", &format!("RequestId: {id} Error: Runtime exited without answering")), true)
            }
        },
        status = env.child.wait() => {
            let code = status.ok().and_then(|s| s.code()).map_or("signal".into(), |c| c.to_string());
            (error_payload("Runtime.ExitError", &format!("RequestId: {id} Error: Runtime exited with error: exit status {code}")), true)
        }
        _ = tokio::time::sleep(spec.timeout) => {
            env.kill().await;
            let secs = spec.timeout.as_secs_f64();
            (error_payload("Sandbox.Timedout", &format!("RequestId: {id} Error: Task timed out after {secs:.2} seconds")), true)
        }
    }
}

fn error_payload(ty: &str, message: &str) -> Bytes {
    Bytes::from(json!({ "errorType": ty, "errorMessage": message }).to_string())
}

// --- Execution environments and the Runtime API ------------------------------------------------

struct Event {
    id: String,
    payload: Bytes,
    invoked: String,
    client_context: Option<String>,
    deadline_ms: u64,
    done: oneshot::Sender<Outcome>,
}

enum Outcome {
    Response(Bytes),
    Error(Bytes),
    InitError(Bytes),
}

/// One warm process of a version, with its Runtime API.
struct Environment {
    child: tokio::process::Child,
    events: mpsc::Sender<Event>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct RuntimeState {
    /// The event being handled: its id and where its outcome goes.
    current: Option<(String, oneshot::Sender<Outcome>)>,
}

struct RuntimeApi {
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    state: Mutex<RuntimeState>,
}

impl Environment {
    async fn start(name: &str, version: &str, spec: &FunctionSpec) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (events, rx) = mpsc::channel(1);
        let api =
            Arc::new(RuntimeApi { events: tokio::sync::Mutex::new(rx), state: Mutex::new(RuntimeState::default()) });
        let app = axum::Router::new().fallback(runtime_api).with_state(api);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut cmd = match &spec.runtime {
            Runtime::Binary { program, args } => {
                let mut c = tokio::process::Command::new(program);
                c.args(args);
                c
            }
            Runtime::Node { node, dir, handler } => {
                let mut c = tokio::process::Command::new(node);
                c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/node/shim.mjs"))
                    .current_dir(dir)
                    .env("LAMBDA_TASK_ROOT", dir)
                    .env("_HANDLER", handler);
                c
            }
        };
        cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", version)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("emu/[{version}]{port}"))
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "emulated")
            .env("AWS_SECRET_ACCESS_KEY", "emulated")
            .env("AWS_SESSION_TOKEN", "emulated")
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .envs(&spec.env)
            .stdin(std::process::Stdio::null())
            // Its own process group, so killing the environment kills what it started too
            // (a server behind lambda-adapter), as a Lambda sandbox ends as a whole.
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| std::io::Error::new(e.kind(), format!("starting {cmd:?}: {e}")))?;
        Ok(Self { child, events, _server: server })
    }
}

impl Environment {
    /// Kills the environment's whole process group.
    async fn kill(&mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    fn kill_group(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: killpg only sends a signal; the group is the one this child leads.
            unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.kill_group();
        self._server.abort();
    }
}

async fn runtime_api(State(api): State<Arc<RuntimeApi>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let body = axum::body::to_bytes(req.into_body(), 2 * PAYLOAD_LIMIT).await.unwrap_or_default();
    let accepted = || (StatusCode::ACCEPTED, axum::Json(json!({ "status": "OK" }))).into_response();
    match (method, seg.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            let event = { api.events.lock().await.recv().await };
            let Some(event) = event else { return StatusCode::GONE.into_response() };
            let mut response = (StatusCode::OK, event.payload).into_response();
            let h = response.headers_mut();
            h.insert("lambda-runtime-aws-request-id", event.id.parse().expect("ascii"));
            h.insert("lambda-runtime-deadline-ms", event.deadline_ms.into());
            h.insert("lambda-runtime-invoked-function-arn", event.invoked.parse().expect("ascii"));
            let trace = format!(
                "Root=1-{:08x}-{};Parent={};Sampled=0",
                now_ms() / 1000,
                &event.id.replace('-', "")[..24],
                &event.id[..8]
            );
            h.insert("lambda-runtime-trace-id", trace.parse().expect("ascii"));
            if let Some(c) = event.client_context.and_then(|c| c.parse().ok()) {
                h.insert("lambda-runtime-client-context", c);
            }
            api.state.lock().expect("runtime state").current = Some((event.id, event.done));
            response
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")]) => {
            let current = {
                let mut s = api.state.lock().expect("runtime state");
                if s.current.as_ref().is_some_and(|(c, _)| c == id) { s.current.take() } else { None }
            };
            let Some((_, done)) = current else {
                return (StatusCode::BAD_REQUEST, axum::Json(json!({ "errorType": "InvalidRequestID" })))
                    .into_response();
            };
            let _ = done.send(if *kind == "response" { Outcome::Response(body) } else { Outcome::Error(body) });
            accepted()
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            // The pending (or next) invocation fails with it.
            let current = api.state.lock().expect("runtime state").current.take();
            match current {
                Some((_, done)) => {
                    let _ = done.send(Outcome::InitError(body));
                }
                None => {
                    if let Some(event) = api.events.lock().await.recv().await {
                        let _ = event.done.send(Outcome::InitError(body));
                    }
                }
            }
            accepted()
        }
        _ => (StatusCode::NOT_FOUND, format!("unknown runtime API call {path}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_in_every_form() {
        assert_eq!(function_ref("greeter"), Some(("greeter".into(), None)));
        assert_eq!(function_ref("greeter:live"), Some(("greeter".into(), Some("live".into()))));
        assert_eq!(function_ref("123456789012:function:greeter:2"), Some(("greeter".into(), Some("2".into()))));
        assert_eq!(
            function_ref("arn:aws:lambda:us-east-1:123456789012:function:greeter:$LATEST"),
            Some(("greeter".into(), Some("$LATEST".into())))
        );
        assert_eq!(
            function_ref("arn:aws:lambda:us-east-1:123456789012:function:greeter"),
            Some(("greeter".into(), None))
        );
        assert_eq!(function_ref("a:b:c"), None);
        assert_eq!(percent_decode("arn%3Aaws%3Alambda"), "arn:aws:lambda");
        assert_eq!(percent_decode("%24LATEST"), "$LATEST");
    }
}
