//! Lambda deployments on the Lambda emulator (`tests/lambda-emu`): registering by version and
//! by alias, invocations through Lambda Invoke, pinning each invocation to the function version
//! its first attempt ran on (so a moved alias never changes the code under it), the check of a
//! new version behind an alias, and Lambda's failures (function errors, throttling, timeouts).
//! Three kinds of function: the Rust SDK's Lambda handler, the TypeScript SDK's Lambda handler
//! (through the emulator's Node shim) and a TypeScript SDK HTTP server behind lambda-adapter.

use std::path::PathBuf;
use std::time::Duration;

use perdure_lambda_emu::{Emulator, FunctionSpec, Injected};
use serde_json::{Value, json};

use crate::harness::*;

/// The emulator, on its own runtime (the tests themselves are blocking).
pub(crate) struct Lambda {
    pub(crate) emu: Emulator,
    rt: tokio::runtime::Runtime,
}

impl Lambda {
    pub(crate) fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start()).expect("start the Lambda emulator");
        Self { emu, rt }
    }

    /// A perdure that reaches Lambda (and STS) at the emulator, with static credentials.
    pub(crate) fn perdure(&self, extra: &[(&str, &str)]) -> Perdure {
        let endpoint = self.emu.endpoint();
        let mut env = vec![
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ];
        env.extend_from_slice(extra);
        Perdure::start_with(&env)
    }
}

impl Drop for Lambda {
    fn drop(&mut self) {
        self.rt.block_on(self.emu.shutdown());
    }
}

/// A binary of another workspace package, built next to the test binaries.
fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/debug");
    let bin = dir.join(name);
    assert!(bin.exists(), "{} not built: run `cargo build --workspace --all-targets`", bin.display());
    bin
}

/// The three kinds of function the scenarios run on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// `restate-sdk`'s Lambda handler (`perdure-rust-lambda`).
    Rust,
    /// The TypeScript SDK's Lambda handler (`services.handler`), through the Node shim.
    Ts,
    /// The TypeScript SDK's HTTP/1.1 server behind `perdure-lambda-adapter`.
    Adapter,
}

/// A function of `kind` whose code is tagged `tag` (what `Greeter/sleepy` answers), with
/// `variant` edits (see the services) for a changed version.
pub(crate) fn function(kind: Kind, tag: &str, variant: &str) -> FunctionSpec {
    let ts = repo_root().join("tests/services/ts");
    let spec = match kind {
        Kind::Rust => FunctionSpec::binary(workspace_bin("perdure-rust-lambda")),
        Kind::Ts => FunctionSpec::node(node22(), ts, "services.handler").env("PERDURE_SERVICES_MODE", "lambda"),
        Kind::Adapter => {
            let port = free_port();
            let command = format!(
                "exec '{}' '{}' {port} h2 {tag} '{variant}'",
                node22().display(),
                ts.join("services.mjs").display()
            );
            FunctionSpec::binary(workspace_bin("perdure-lambda-adapter"))
                .env("PERDURE_ADAPTER_COMMAND", &command)
                .env("PERDURE_ADAPTER_PORT", &port.to_string())
                .max_environments(1)
        }
    };
    spec.env("TAG", tag).env("VARIANT", variant).env("RESTATE_LOGGING", "ERROR")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn register_arn(perdure: &Perdure, arn: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({ "arn": arn });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let r = http().post(format!("{}/deployments", perdure.admin)).json(&body).send().expect("POST /deployments");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// A perdure serving function `name` (code of `kind`, tagged v1), registered by its version 1.
fn registered_by_version(lambda: &Lambda, name: &str, kind: Kind, perdure_env: &[(&str, &str)]) -> Perdure {
    lambda.emu.create_function(name, function(kind, "v1", ""));
    let v1 = lambda.emu.publish_version(name);
    let perdure = lambda.perdure(perdure_env);
    let (status, body) = register_arn(&perdure, &lambda.emu.arn(name, Some(&v1)), json!({}));
    assert_eq!(status, 201, "{body}");
    perdure
}

fn send(perdure: &Perdure, path: &str, body: &str) -> String {
    let r = post_json(&format!("{}/{path}/send", perdure.ingress), body);
    assert_eq!(r.status, 202, "{path}: {}", r.body);
    r.json()["invocationId"].as_str().expect("invocationId").to_owned()
}

fn attach(perdure: &Perdure, id: &str) -> Reply {
    get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress))
}

/// Where `finished on` shows in `Greeter/sleepy`'s answer (the TS services answer
/// `{finished_on}`, the Rust ones a string).
fn finished_on(kind: Kind, reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    match kind {
        Kind::Rust => reply.json().as_str().expect("a string").trim_start_matches("finished on ").to_owned(),
        Kind::Ts | Kind::Adapter => reply.json()["finished_on"].as_str().expect("finished_on").to_owned(),
    }
}

/// The alias-pinning scenario: an invocation that started on version 1 and suspended in a
/// sleep resumes on version 1 after the alias moved to version 2, while invocations started
/// after the move run on version 2.
fn alias_pinning(kind: Kind) {
    let lambda = Lambda::start();
    let emu = &lambda.emu;
    emu.create_function("greeter", function(kind, "v1", ""));
    let v1 = emu.publish_version("greeter");
    emu.update_function("greeter", function(kind, "v2", ""));
    let v2 = emu.publish_version("greeter");
    emu.set_alias("greeter", "live", &v1, &[]);
    let perdure = lambda.perdure(&[]);

    let alias = emu.arn("greeter", Some("live"));
    let (status, body) = register_arn(&perdure, &alias, json!({}));
    assert_eq!(status, 201, "{body}");
    let dp = body["id"].as_str().expect("id").to_owned();
    let greeted = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"Lambda\"");
    assert_eq!((greeted.status, greeted.body.as_str()), (200, "\"Hello, Lambda!\""), "{kind:?}");

    let sleeping = send(&perdure, "Greeter/sleepy", "6000");
    eventually(Duration::from_secs(20), "the sleeper to suspend on version 1", || {
        let rows = query_rows(
            &perdure,
            &format!("SELECT status, pinned_lambda_version FROM sys_invocation WHERE id = '{sleeping}'"),
        );
        (rows.first().is_some_and(|r| r["status"] == "suspended" && r["pinned_lambda_version"] == json!(v1)))
            .then_some(())
    });
    let v1_before = emu.invocations("greeter", &v1);

    // The pipeline moves the alias: new work follows it, the sleeper stays on version 1.
    emu.set_alias("greeter", "live", &v2, &[]);
    let fresh = post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "10");
    assert_eq!(finished_on(kind, &fresh), "v2", "{kind:?}: a new invocation follows the alias");
    assert_eq!(
        finished_on(kind, &attach(&perdure, &sleeping)),
        "v1",
        "{kind:?}: it resumed on the version it started on"
    );
    assert!(emu.invocations("greeter", &v1) > v1_before, "{kind:?}: the resume invoked version 1");

    let rows =
        query_rows(&perdure, &format!("SELECT pinned_lambda_version FROM sys_invocation WHERE id = '{sleeping}'"));
    assert_eq!(rows[0]["pinned_lambda_version"], json!(v1));
    let described = get(&format!("{}/deployments/{dp}", perdure.admin)).json();
    assert_eq!(described["arn"], json!(alias));
    let versions = described["lambda_versions"].as_array().expect("lambda_versions");
    assert!(
        versions.iter().any(|v| v["version"] == json!(v2) && v["compatible"] == true),
        "the new version was checked and passed: {described}"
    );
    let (code, out, err) = perdure_cli(&perdure, &["invocations", "describe", &sleeping]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("Lambda:       version {v1}")), "{out}");
}

#[test]
fn a_moved_alias_never_changes_the_code_under_a_running_invocation_rust() {
    alias_pinning(Kind::Rust);
}

#[test]
fn a_moved_alias_never_changes_the_code_under_a_running_invocation_typescript() {
    alias_pinning(Kind::Ts);
}

#[test]
fn a_moved_alias_never_changes_the_code_under_a_running_invocation_behind_lambda_adapter() {
    alias_pinning(Kind::Adapter);
}

#[test]
fn an_incompatible_version_behind_the_alias_is_reported_and_not_routed_to() {
    let lambda = Lambda::start();
    let emu = &lambda.emu;
    emu.create_function("greeter", function(Kind::Rust, "v1", ""));
    let v1 = emu.publish_version("greeter");
    // Version 2 drops Greeter/sleepy: new calls to it could not run there.
    emu.update_function("greeter", function(Kind::Rust, "v2", "drop:Greeter.sleepy"));
    let v2 = emu.publish_version("greeter");
    emu.set_alias("greeter", "live", &v1, &[]);
    let perdure = lambda.perdure(&[]);
    let alias = emu.arn("greeter", Some("live"));
    let (status, body) = register_arn(&perdure, &alias, json!({}));
    assert_eq!(status, 201, "{body}");
    let dp = body["id"].as_str().expect("id").to_owned();

    emu.set_alias("greeter", "live", &v2, &[]);
    let done = post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "1");
    assert_eq!(finished_on(Kind::Rust, &done), "v1", "held at the last version that passed");
    let described = get(&format!("{}/deployments/{dp}", perdure.admin)).json();
    assert_eq!(described["held_at_version"], json!(v1), "{described}");
    let failed = described["lambda_versions"].as_array().unwrap().iter().find(|v| v["version"] == json!(v2)).cloned();
    let failed = failed.unwrap_or_else(|| panic!("version 2 is listed: {described}"));
    assert_eq!(failed["compatible"], false);
    assert!(failed["changes"].to_string().contains("sleepy"), "it says what broke: {failed}");
    let (code, out, err) = perdure_cli(&perdure, &["dp", "describe", &dp]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("FAILED") && out.contains(&format!("held at version {v1}")), "{out}");

    // While held, new work stays on version 1.
    let on_v2 = emu.invocations("greeter", &v2);
    for _ in 0..3 {
        assert_eq!(post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"x\"").status, 200);
    }
    assert_eq!(emu.invocations("greeter", &v2), on_v2, "nothing new ran on the refused version");

    // The operator accepts version 2: registering the alias again with breaking.
    let (status, body) = register_arn(&perdure, &alias, json!({ "force": true, "breaking": true }));
    assert_eq!(status, 200, "{body}");
    let described = get(&format!("{}/deployments/{dp}", perdure.admin)).json();
    assert!(described.get("held_at_version").is_none(), "{described}");
    assert_eq!(post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"y\"").status, 200);
    assert!(emu.invocations("greeter", &v2) > on_v2, "new work follows the alias again");
}

#[test]
fn registration_needs_a_version_or_an_alias_and_reports_unknown_ones() {
    let lambda = Lambda::start();
    let emu = &lambda.emu;
    emu.create_function("greeter", function(Kind::Rust, "v1", ""));
    let v1 = emu.publish_version("greeter");
    let perdure = lambda.perdure(&[]);

    let (status, body) = register_arn(&perdure, &emu.arn("greeter", None), json!({}));
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("names no version or alias"), "{body}");
    let (status, body) = register_arn(&perdure, &emu.arn("greeter", Some("$LATEST")), json!({}));
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("lambda.allow-latest"), "{body}");
    let (status, body) = register_arn(&perdure, &emu.arn("greeter", Some("99")), json!({}));
    assert_eq!(status, 500, "{body}");
    assert!(body["message"].as_str().unwrap().contains("does not exist"), "{body}");

    // By version, with the perdure CLI.
    let (code, out, err) = perdure_cli(&perdure, &["dp", "add", &emu.arn("greeter", Some(&v1))]);
    assert_eq!(code, 0, "{out}{err}");
    let sleeping = send(&perdure, "Greeter/sleepy", "10");
    assert_eq!(finished_on(Kind::Rust, &attach(&perdure, &sleeping)), "v1");
    let rows =
        query_rows(&perdure, &format!("SELECT pinned_lambda_version FROM sys_invocation WHERE id = '{sleeping}'"));
    assert_eq!(rows[0]["pinned_lambda_version"], json!(v1));
    let listed = get(&format!("{}/deployments", perdure.admin)).json();
    assert_eq!(listed["deployments"][0]["arn"], json!(emu.arn("greeter", Some(&v1))), "{listed}");

    // $LATEST with the development switch.
    let dev = lambda.perdure(&[("PERDURE_LAMBDA__ALLOW_LATEST", "true")]);
    let (status, body) = register_arn(&dev, &emu.arn("greeter", Some("$LATEST")), json!({}));
    assert_eq!(status, 201, "{body}");
}

#[test]
fn throttling_function_errors_and_timeouts_are_retried() {
    let lambda = Lambda::start();
    let emu = &lambda.emu;
    let perdure = registered_by_version(&lambda, "ts", Kind::Ts, &[]);

    // Throttled twice, then it runs.
    emu.fail_next("ts", 2, Injected::Throttle);
    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"slow\"");
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, slow!\""));

    // A handler error on the first two attempts (the function answers, with an Error
    // message), then success on the same version.
    let r = post_json(&format!("{}/Greeter/flaky", perdure.ingress), "\"k\"");
    assert_eq!(r.status, 200, "{}", r.body);

    // A function that times out on every attempt is retried, and the failure says why.
    emu.create_function("stall", function(Kind::Rust, "v1", "").timeout(Duration::from_secs(1)));
    let s1 = emu.publish_version("stall");
    let perdure = lambda.perdure(&[]);
    let (status, body) = register_arn(&perdure, &emu.arn("stall", Some(&s1)), json!({}));
    assert_eq!(status, 201, "{body}");
    let id = send(&perdure, "Greeter/stall", "5000");
    let failure = eventually(Duration::from_secs(30), "two timed-out attempts", || {
        let rows =
            query_rows(&perdure, &format!("SELECT retry_count, last_failure FROM sys_invocation WHERE id = '{id}'"));
        let row = rows.first()?.clone();
        (row["retry_count"].as_u64()? >= 2).then_some(row)
    });
    assert!(failure["last_failure"].as_str().unwrap_or_default().contains("Task timed out"), "{failure}");
    assert_eq!(request("PATCH", &format!("{}/invocations/{id}/kill", perdure.admin)).status, 200);
}

/// Invokes `function` on the emulator with an event, as API Gateway does; returns its answer.
fn invoke_event(emu: &Emulator, function: &str, event: &Value) -> Value {
    let r = http()
        .post(format!("{}/2015-03-31/functions/{function}/invocations", emu.endpoint()))
        .json(event)
        .send()
        .expect("Invoke");
    assert_eq!(r.status().as_u16(), 200, "Invoke {function}");
    let function_error = r.headers().get("x-amz-function-error").map(|v| v.to_str().unwrap_or_default().to_owned());
    let answer: Value = r.json().expect("the function's answer is JSON");
    assert_eq!(function_error, None, "{answer}");
    answer
}

/// An HTTP API (payload v2) proxy event for `method raw_path` on stage `prod`.
fn apigw_v2(method: &str, raw_path: &str, body: Option<&str>, headers: Value) -> Value {
    let mut h = json!({ "host": "abc.execute-api.us-east-1.amazonaws.com", "content-type": "application/json",
        "x-amzn-trace-id": "Root=1-5e1b4151-5ac6c58f3757e4b4a07a7b31", "x-forwarded-proto": "https" });
    if let (Value::Object(h), Value::Object(extra)) = (&mut h, headers) {
        h.extend(extra);
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": "", "headers": h,
        "requestContext": { "accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "http": { "method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "curl/8" },
            "requestId": "r2", "routeKey": "$default", "stage": "prod", "time": "04/Dec/2026:10:00:00 +0000", "timeEpoch": 1796378400000u64 },
        "body": body.map(|b| base64_encode(b.as_bytes())), "isBase64Encoded": body.is_some(),
    })
}

/// A REST API (payload v1) proxy event; its `path` carries no stage.
fn apigw_v1(method: &str, path: &str, body: Option<&str>) -> Value {
    json!({
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": { "Host": "abc.execute-api.us-east-1.amazonaws.com", "Content-Type": "application/json", "X-Amzn-Trace-Id": "Root=1-abc" },
        "multiValueHeaders": {}, "pathParameters": { "proxy": path.trim_start_matches('/') },
        "requestContext": { "accountId": "123456789012", "resourceId": "r1", "stage": "prod", "requestId": "r1",
            "identity": { "sourceIp": "198.51.100.7" }, "resourcePath": "/{proxy+}", "httpMethod": method,
            "path": format!("/prod{path}"), "apiId": "abc" },
        "body": body, "isBase64Encoded": false,
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The body of an API Gateway answer, decoded.
fn answer_body(answer: &Value) -> String {
    let body = answer["body"].as_str().unwrap_or_default();
    if answer["isBase64Encoded"] == true {
        use base64::Engine as _;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body).expect("base64")).expect("utf-8")
    } else {
        body.to_owned()
    }
}

/// API Gateway in front of the ingress through `apigw-front` (a Lambda function on the
/// emulator): REST v1 and HTTP v2 events get the ingress's own status codes and bodies.
#[test]
fn api_gateway_events_reach_the_ingress_through_the_front() {
    let lambda = Lambda::start();
    let emu = &lambda.emu;
    let perdure = registered_by_version(&lambda, "greeter", Kind::Rust, &[]);
    emu.create_function(
        "front",
        FunctionSpec::binary(workspace_bin("perdure-apigw-front")).env("PERDURE_INGRESS_URL", &perdure.ingress),
    );
    emu.publish_version("front");

    // HTTP API v2 with a named stage in the path, base64 body.
    let a = invoke_event(emu, "front", &apigw_v2("POST", "/prod/Greeter/greet", Some("\"Gateway\""), json!({})));
    assert_eq!((a["statusCode"].as_u64(), answer_body(&a).as_str()), (Some(200), "\"Hello, Gateway!\""), "{a}");
    // REST API v1, plain body.
    let a = invoke_event(emu, "front", &apigw_v1("POST", "/Greeter/greet", Some("\"REST\"")));
    assert_eq!((a["statusCode"].as_u64(), answer_body(&a).as_str()), (Some(200), "\"Hello, REST!\""), "{a}");

    // Errors: exactly what the ingress answers directly.
    for path in ["/Nope/greet", "/Greeter/nope"] {
        let direct = post_json(&format!("{}{path}", perdure.ingress), "\"x\"");
        let a = invoke_event(emu, "front", &apigw_v2("POST", &format!("/prod{path}"), Some("\"x\""), json!({})));
        assert_eq!(a["statusCode"].as_u64(), Some(direct.status as u64), "{path}: {a}");
        assert_eq!(answer_body(&a), direct.body, "{path}");
        let a = invoke_event(emu, "front", &apigw_v1("POST", path, Some("\"x\"")));
        assert_eq!(
            (a["statusCode"].as_u64(), answer_body(&a)),
            (Some(direct.status as u64), direct.body.clone()),
            "{path}"
        );
    }

    // `/send` with an idempotency key, twice: one invocation; then its output by id.
    let send = apigw_v2("POST", "/prod/Greeter/greet/send", Some("\"once\""), json!({ "idempotency-key": "k-1" }));
    let first = invoke_event(emu, "front", &send);
    let second = invoke_event(emu, "front", &send);
    assert_eq!(first["statusCode"].as_u64(), Some(202), "{first}");
    let id = serde_json::from_str::<Value>(&answer_body(&first)).expect("JSON")["invocationId"]
        .as_str()
        .expect("invocationId")
        .to_owned();
    let again = serde_json::from_str::<Value>(&answer_body(&second)).expect("JSON");
    assert_eq!(again["invocationId"].as_str(), Some(id.as_str()), "the same invocation");
    let output = eventually(Duration::from_secs(20), "the sent invocation's output", || {
        let a = invoke_event(emu, "front", &apigw_v1("GET", &format!("/restate/invocation/{id}/output"), None));
        (a["statusCode"].as_u64() == Some(200)).then(|| answer_body(&a))
    });
    assert_eq!(output, "\"Hello, once!\"");
}

/// Behind an API Gateway HTTP integration that keeps the stage in the path, the ingress drops
/// `ingress.path-prefix` and accepts API Gateway's `x-amzn-*` / `x-forwarded-*` headers.
#[test]
fn the_ingress_serves_under_an_api_gateway_stage_prefix() {
    let lambda = Lambda::start();
    let perdure = registered_by_version(&lambda, "greeter", Kind::Rust, &[("PERDURE_INGRESS__PATH_PREFIX", "/prod")]);
    let gateway_headers = [
        ("content-type", "application/json"),
        ("x-amzn-trace-id", "Root=1-5e1b4151-5ac6c58f3757e4b4a07a7b31"),
        ("x-amzn-apigateway-api-id", "abc"),
        ("x-amzn-requestid", "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
    ];
    let r = post_with(&format!("{}/prod/Greeter/greet", perdure.ingress), "\"stage\"", &gateway_headers);
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, stage!\""));
    let r = post_with(&format!("{}/prod/Greeter/greet/send", perdure.ingress), "\"later\"", &gateway_headers);
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["invocationId"].as_str().expect("invocationId").to_owned();
    let r = get(&format!("{}/prod/restate/invocation/{id}/attach", perdure.ingress));
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, later!\""));
    // Without the prefix: not found, saying where the ingress serves.
    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"x\"");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("/prod"), "{}", r.body);
}

/// Lambda events are signed like HTTP requests: the TypeScript SDK's Lambda handler with
/// `identityKeys` accepts perdure's and refuses unsigned ones.
#[test]
fn lambda_events_are_signed_for_sdks_that_verify_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("perdure.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_perdure"))
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();

    let lambda = Lambda::start();
    let emu = &lambda.emu;
    emu.create_function("ts", function(Kind::Ts, "v1", "").env("IDENTITY_KEYS", &public));
    let v1 = emu.publish_version("ts");
    let arn = emu.arn("ts", Some(&v1));

    let unsigned = lambda.perdure(&[]);
    let (status, body) = register_arn(&unsigned, &arn, json!({}));
    assert!(!(200..300).contains(&status) && body.to_string().contains("401"), "{status} {body}");

    let signed = lambda.perdure(&[("PERDURE_REQUEST_IDENTITY__PRIVATE_KEY_FILE", key.to_str().unwrap())]);
    let (status, body) = register_arn(&signed, &arn, json!({}));
    assert_eq!(status, 201, "{body}");
    let r = post_json(&format!("{}/Greeter/greet", signed.ingress), "\"signed\"");
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, signed!\""));
    let r = post_json(&format!("{}/Counter/bob/add", signed.ingress), "3");
    assert_eq!((r.status, r.body.as_str()), (200, "3"));
}
