//! Deploy pipelines against a real perdure and the Lambda emulator: the CDK construct's
//! custom-resource handler (`cdk/handler`) and `@restatedev/restate-cdk`'s own registration
//! handler, each driven with CloudFormation-shaped Create/Update/Delete events by
//! `cdk/test/drive.mjs`, the way CloudFormation and the CDK Provider framework run them; the
//! construct's synthesized template (`cdk/test/construct.test.mjs`); and the Terraform
//! module's provisioner commands (`infra/`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;
use crate::lambda::{Kind, Lambda, function};

const TOKEN: &str = "pipeline-token-0123456789";

/// The `cdk/` package, installed (and compiled) by `scripts/setup-node.sh`.
fn cdk_dir() -> std::path::PathBuf {
    let dir = repo_root().join("cdk");
    assert!(
        dir.join("node_modules/aws-cdk-lib").exists() && dir.join("node_modules/@restatedev/restate-cdk").exists(),
        "cdk/node_modules missing: run scripts/setup-node.sh (the test command does)"
    );
    dir
}

/// The emulator with function `greeter`: versions 1-3 tagged v1-v3, version 4 a breaking
/// change (`Counter.get` turns exclusive), and the admin token as a Secrets Manager secret.
struct Pipeline {
    lambda: Lambda,
    perdure: Perdure,
    secret: String,
}

impl Pipeline {
    fn start() -> Self {
        let lambda = Lambda::start();
        lambda.emu.create_function("greeter", function(Kind::Ts, "v1", ""));
        lambda.emu.publish_version("greeter");
        for (tag, variant) in [("v2", ""), ("v3", ""), ("v4", "flip:Counter.get")] {
            lambda.emu.update_function("greeter", function(Kind::Ts, tag, variant));
            lambda.emu.publish_version("greeter");
        }
        let secret = lambda.emu.put_secret("perdure/admin-token", TOKEN);
        lambda.emu.put_secret("perdure/wrong-token", "not-the-token-0123456789");
        let perdure = lambda.perdure(&[("PERDURE_ADMIN__AUTH_TOKENS", TOKEN)]);
        Self { lambda, perdure, secret }
    }

    fn arn(&self, version: &str) -> String {
        self.lambda.emu.arn("greeter", Some(version))
    }

    /// Runs `event` through `handler` (`perdure` or `restate`): the result, or the error message.
    fn drive(&self, handler: &str, event: &Value) -> Result<Value, String> {
        let mut child = Command::new(node22())
            .arg(cdk_dir().join("test/drive.mjs"))
            .arg(handler)
            .env("AWS_ENDPOINT_URL", self.lambda.emu.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("PERDURE_POLL_MS", "200")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cdk/test/drive.mjs");
        child.stdin.take().expect("stdin").write_all(event.to_string().as_bytes()).expect("write the event");
        let out = child.wait_with_output().expect("drive.mjs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
            panic!("drive.mjs printed no result:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
        });
        let v: Value = serde_json::from_str(line).expect("drive.mjs result");
        if v["ok"] == true { Ok(v["result"].clone()) } else { Err(v["error"].as_str().unwrap_or_default().to_owned()) }
    }

    fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = http().request(method, format!("{}{path}", self.perdure.admin)).bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().expect("admin API");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn deployment(&self, id: &str) -> (u16, Value) {
        self.admin(reqwest::Method::GET, &format!("/deployments/{id}"), None)
    }

    fn deployments(&self) -> Vec<Value> {
        self.admin(reqwest::Method::GET, "/deployments", None).1["deployments"].as_array().cloned().unwrap_or_default()
    }

    /// A `Greeter/sleepy` send of `ms` on the latest revision; its invocation id once it is
    /// pinned to a deployment (its first attempt started).
    fn sleepy(&self, ms: u64) -> String {
        let r = post_json(&format!("{}/Greeter/sleepy/send", self.perdure.ingress), &ms.to_string());
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.json()["invocationId"].as_str().expect("invocationId").to_owned();
        eventually(Duration::from_secs(60), "the sleepy invocation to be pinned", || {
            let (_, inv) = self.admin(reqwest::Method::GET, &format!("/invocations/{id}"), None);
            inv["pinned_deployment_id"].as_str().map(|_| ())
        });
        id
    }

    fn finished_on(&self, id: &str) -> String {
        let r = get(&format!("{}/restate/invocation/{id}/attach", self.perdure.ingress));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["finished_on"].as_str().expect("finished_on").to_owned()
    }
}

fn event(kind: &str, props: &Value, old: Option<&Value>, physical: Option<&str>) -> Value {
    let mut e = json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/r",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/GreeterService/1",
        "RequestId": format!("req-{kind}"),
        "LogicalResourceId": "Perdure",
        "ResourceType": "Custom::PerdureDeployment",
        "ResourceProperties": props,
    });
    if let Some(old) = old {
        e["OldResourceProperties"] = old.clone();
    }
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    e
}

fn with(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Value::Object(b), Value::Object(e)) = (&mut v, extra) {
        for (k, val) in e {
            if val.is_null() {
                b.remove(&k)
            } else {
                b.insert(k, val)
            };
        }
    }
    v
}

fn data<'a>(result: &'a Value, key: &str) -> &'a str {
    result["Data"][key].as_str().unwrap_or_else(|| panic!("no Data.{key} in {result}"))
}

/// The construct's handler through a pipeline's life: register v1; v2 while an invocation
/// sleeps on v1 (v1 reported draining, kept); v3 smoke-tested and ramped to 10% while retiring
/// v1 only once its invocation finished (on v1); v3 promoted and v2 retired; a breaking v4
/// refused with perdure's 409 until accepted; a wrong token failing with 401; and stack
/// deletion that refuses while work is pinned, then waits for it and removes every version.
#[test]
fn cdk_handler_registers_ramps_promotes_and_retires_after_drain() {
    let p = Pipeline::start();
    let unqualified = p.lambda.emu.arn("greeter", None);
    let base = json!({
        "adminUrl": p.perdure.admin,
        "ingressUrl": p.perdure.ingress,
        "functionArn": p.arn("1"),
        "functionVersion": "1",
        "authTokenSecretArn": p.secret,
        "promote": "true",
        "retireKeep": "0",
        "waitForDrainSeconds": "0",
        "breaking": "false",
        "removalPolicy": "destroy",
    });

    let created = p.drive("perdure", &event("Create", &base, None, None)).expect("Create");
    let physical = format!("perdure:{unqualified}");
    assert_eq!(created["PhysicalResourceId"], json!(physical));
    let dp1 = data(&created, "DeploymentId").to_owned();
    assert!(data(&created, "Revisions").contains("Greeter=1"), "{created}");
    let (_, d1) = p.deployment(&dp1);
    assert_eq!(d1["arn"], json!(p.arn("1")));
    assert_eq!(d1["drain_status"], "active", "{d1}");
    let inv1 = p.sleepy(6000);

    // v2: promoted at once; v1 still has the sleeping invocation, so it is reported and kept.
    let v2 = with(&base, json!({"functionArn": p.arn("2"), "functionVersion": "2"}));
    let updated = p.drive("perdure", &event("Update", &v2, Some(&base), Some(&physical))).expect("Update to v2");
    assert_eq!(updated["PhysicalResourceId"], json!(physical), "a new version updates in place");
    let dp2 = data(&updated, "DeploymentId").to_owned();
    assert_ne!(dp2, dp1);
    assert_eq!(data(&updated, "Draining"), dp1);
    assert_eq!(data(&updated, "Retired"), "");
    assert_eq!(p.deployment(&dp1).1["drain_status"], "draining");

    // v3: a smoke test on v3 alone, then 10% of new calls, and this time the deploy waits for
    // v1 to drain and retires it; v2 still serves the other 90%, so it stays.
    let v3 = with(
        &v2,
        json!({
            "functionArn": p.arn("3"), "functionVersion": "3", "rampPercent": "10", "waitForDrainSeconds": "90",
            "smokeTest": json!({"service": "Greeter", "handler": "greet", "body": "smoke", "expect": "Hello, smoke!"}).to_string(),
        }),
    );
    let ramped =
        p.drive("perdure", &event("Update", &v3, Some(&v2), Some(&physical))).expect("Update to v3 with a ramp");
    let dp3 = data(&ramped, "DeploymentId").to_owned();
    assert_eq!(data(&ramped, "Retired"), dp1, "{ramped}");
    assert_eq!(data(&ramped, "Draining"), "");
    assert_eq!(p.deployment(&dp1).0, 404, "v1 was retired");
    assert_eq!(p.finished_on(&inv1), "v1", "the invocation finished on the version it started on");
    let smoke = query_rows(
        &p.perdure,
        &format!(
            "SELECT count(*) AS n FROM sys_invocation WHERE target_handler_name = 'greet' AND pinned_deployment_id = '{dp3}'"
        ),
    );
    assert!(smoke[0]["n"].as_i64().unwrap_or(0) >= 1, "the smoke test ran on v3: {smoke:?}");
    let (_, greeter) = p.admin(reqwest::Method::GET, "/services/Greeter", None);
    assert_eq!(greeter["deployment_id"], json!(dp2), "{greeter}");
    assert_eq!(greeter["ramp"]["deployment_id"], json!(dp3), "{greeter}");
    assert_eq!(greeter["ramp"]["percent"], 10, "{greeter}");

    // Promote v3 (the same version: same deployment), and v2 drains at once and goes.
    let promoted_props = with(&v3, json!({"rampPercent": null, "smokeTest": null, "waitForDrainSeconds": "0"}));
    let promoted =
        p.drive("perdure", &event("Update", &promoted_props, Some(&v3), Some(&physical))).expect("promote v3");
    assert_eq!(data(&promoted, "DeploymentId"), dp3);
    assert_eq!(data(&promoted, "Retired"), dp2, "{promoted}");
    let (_, greeter) = p.admin(reqwest::Method::GET, "/services/Greeter", None);
    assert_eq!(greeter["deployment_id"], json!(dp3), "{greeter}");
    assert!(greeter["ramp"].is_null(), "{greeter}");

    // A breaking v4 fails the deploy with perdure's reason, until accepted as breaking.
    let v4 = with(&promoted_props, json!({"functionArn": p.arn("4"), "functionVersion": "4"}));
    let refused = p.drive("perdure", &event("Update", &v4, Some(&promoted_props), Some(&physical))).unwrap_err();
    assert!(refused.contains("(409)") && refused.contains("Counter") && refused.contains("get"), "{refused}");
    let v4_breaking = with(&v4, json!({"breaking": "true"}));
    let dp4 = data(
        &p.drive("perdure", &event("Update", &v4_breaking, Some(&v4), Some(&physical))).expect("breaking v4"),
        "DeploymentId",
    )
    .to_owned();

    // A token perdure does not know: 401, named.
    let wrong = with(
        &v4_breaking,
        json!({"authTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:perdure/wrong-token"}),
    );
    let unauthorized = p.drive("perdure", &event("Update", &wrong, Some(&v4_breaking), Some(&physical))).unwrap_err();
    assert!(unauthorized.contains("401"), "{unauthorized}");

    // Stack deletion with DESTROY: refused while an invocation is pinned, unless it waits.
    let inv4 = p.sleepy(4000);
    let held = p.drive("perdure", &event("Delete", &v4_breaking, None, Some(&physical))).unwrap_err();
    assert!(held.contains("still has work pinned to") && held.contains(&dp4), "{held}");
    assert_eq!(p.deployment(&dp4).0, 200, "not removed");
    let waiting = with(&v4_breaking, json!({"waitForDrainSeconds": "90"}));
    p.drive("perdure", &event("Delete", &waiting, None, Some(&physical))).expect("Delete after the drain");
    assert_eq!(p.finished_on(&inv4), "v4");
    let left: Vec<Value> = p
        .deployments()
        .into_iter()
        .filter(|d| d["arn"].as_str().is_some_and(|a| a.starts_with(&unqualified)))
        .collect();
    assert!(left.is_empty(), "every version of the function removed: {left:?}");

    // RETAIN (the default) leaves what is registered alone.
    let retained = with(&base, json!({"removalPolicy": "retain"}));
    let again = p.drive("perdure", &event("Create", &retained, None, None)).expect("Create again");
    p.drive("perdure", &event("Delete", &retained, None, Some(&physical))).expect("Delete, retained");
    assert_eq!(p.deployment(data(&again, "DeploymentId")).0, 200);
}

/// `@restatedev/restate-cdk` 1.7.0's `ServiceDeployer` handler, unchanged, against perdure:
/// health, register (`arn`, `assume_role_arn`, `force`/`breaking`), `PATCH /services/{name}`
/// for `private`, pruning of drained deployments through `POST /query` (skipping one with
/// work still pinned) and `DELETE ?force=true`, and removal through `sys_deployment.endpoint`.
#[test]
fn restate_cdk_service_deployer_handler_works_against_perdure() {
    let p = Pipeline::start();
    let role = "arn:aws:iam::123456789012:role/perdure-invoker";
    let base = json!({
        "adminUrl": p.perdure.admin,
        "serviceLambdaArn": p.arn("1"),
        "invokeRoleArn": role,
        "authTokenSecretArn": p.secret,
        "private": "true",
        "insecure": "false",
        "removalPolicy": "destroy",
        "pruneDrainedDeployments": "true",
        "revisionHistoryLimit": "0",
        "maxPrunedPerRun": "10",
        "force": "false",
        "breaking": "false",
        "configurationVersion": "2026-12-06T00:00:00.000Z",
    });
    p.drive("restate", &event("Create", &base, None, None)).expect("Create");
    let by_arn = |arn: &str| p.deployments().into_iter().find(|d| d["arn"] == json!(arn));
    let d1 = by_arn(&p.arn("1")).expect("v1 registered");
    assert_eq!(d1["assume_role_arn"], json!(role));
    let (_, greeter) = p.admin(reqwest::Method::GET, "/services/Greeter", None);
    assert_eq!(greeter["public"], false, "private: PATCH /services/Greeter {{public:false}}: {greeter}");
    assert_eq!(
        post_json(&format!("{}/Greeter/greet", p.perdure.ingress), "\"x\"").status / 100,
        4,
        "private at the ingress"
    );

    // The same version again (only configurationVersion changed): same deployment, now public.
    let public = with(&base, json!({"private": "false", "configurationVersion": "2026-12-06T00:01:00.000Z"}));
    p.drive("restate", &event("Update", &public, Some(&base), Some("req-Create"))).expect("Update, same version");
    assert_eq!(p.deployments().len(), 1);
    assert_eq!(p.admin(reqwest::Method::GET, "/services/Greeter", None).1["public"], true);
    assert!(p.lambda.emu.assumed_roles().iter().any(|r| r == role), "perdure assumed the invoke role");

    // v2 while an invocation sleeps on v1: the pruning query counts it, so v1 stays.
    let inv1 = p.sleepy(3000);
    let v2 = with(&public, json!({"serviceLambdaArn": p.arn("2")}));
    p.drive("restate", &event("Update", &v2, Some(&public), Some("req-Create"))).expect("Update to v2");
    let d1_id = d1["id"].as_str().expect("id").to_owned();
    assert_eq!(p.deployment(&d1_id).0, 200, "v1 has work pinned: not pruned");
    assert_eq!(p.finished_on(&inv1), "v1");
    p.drive("restate", &event("Update", &v2, Some(&v2), Some("req-Create"))).expect("Update again");
    assert_eq!(p.deployment(&d1_id).0, 404, "drained v1 pruned");

    // Delete: found by `SELECT id FROM sys_deployment WHERE endpoint = '<arn>'` and removed.
    p.drive("restate", &event("Delete", &v2, None, Some("req-Create"))).expect("Delete");
    assert!(by_arn(&p.arn("2")).is_none(), "v2 removed: {:?}", p.deployments());
}

/// The construct's synthesized CloudFormation (`Template.fromStack` assertions) and the
/// example app through the real `cdk synth`: `node --test cdk/test/construct.test.mjs`, after
/// compiling the construct.
#[test]
fn cdk_construct_synthesizes() {
    let dir = cdk_dir();
    let tsc = Command::new(node22())
        .arg(dir.join("node_modules/typescript/bin/tsc"))
        .arg("-p")
        .arg(&dir)
        .output()
        .expect("run tsc");
    assert!(
        tsc.status.success(),
        "tsc:\n{}{}",
        String::from_utf8_lossy(&tsc.stdout),
        String::from_utf8_lossy(&tsc.stderr)
    );
    let out = Command::new(node22())
        .args(["--test", "--test-reporter=spec", "test/construct.test.mjs"])
        .current_dir(&dir)
        .env(
            "PATH",
            format!("{}:{}", node22().parent().expect("bin").display(), std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .expect("node --test");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "construct tests failed:\n{text}");
    assert!(text.contains("pass 6"), "{text}");
}

/// One `local-exec` provisioner of the Terraform module, as `infra/tests/module.py` reads it.
struct Provisioner {
    resource: String,
    when: String,
    interpreter: Vec<String>,
    script: String,
    environment: Vec<String>,
}

/// The module's provisioners (and its static checks: variables typed and described, outputs
/// present, every script executable), from `infra/tests/module.py` with python-hcl2.
fn terraform_provisioners() -> Vec<Provisioner> {
    let out = Command::new(venv_python())
        .arg(repo_root().join("infra/tests/module.py"))
        .output()
        .expect("run infra/tests/module.py");
    assert!(out.status.success(), "module checks:\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("module.py JSON");
    let strings = |v: &Value| {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect::<Vec<_>>()
    };
    assert!(strings(&v["outputs"]).contains(&"deployment_id".to_owned()), "{v}");
    v["provisioners"]
        .as_array()
        .expect("provisioners")
        .iter()
        .map(|p| Provisioner {
            resource: p["resource"].as_str().unwrap_or_default().to_owned(),
            when: p["when"].as_str().unwrap_or_default().to_owned(),
            interpreter: strings(&p["interpreter"]),
            script: p["script"].as_str().unwrap_or_default().to_owned(),
            environment: strings(&p["environment"]),
        })
        .collect()
}

/// Runs the provisioner of `resource` (`create` or `destroy`) the way Terraform's local-exec
/// does, with the environment the module gives it; every variable it sets must be given here.
fn provision(all: &[Provisioner], resource: &str, when: &str, env: &[(&str, String)]) -> (bool, String) {
    let p = all
        .iter()
        .find(|p| p.resource == resource && p.when == when)
        .unwrap_or_else(|| panic!("no {when} provisioner on {resource}"));
    let given: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
    for name in &p.environment {
        assert!(given.contains(&name.as_str()), "{resource} ({when}) sets {name}, which this test does not give");
    }
    let out = Command::new(&p.interpreter[0])
        .args(&p.interpreter[1..])
        .arg(&p.script)
        .env_remove("PERDURE_AUTH_TOKEN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the provisioner");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The Terraform module's life as `terraform apply` runs it, one provisioner at a time, with
/// the exact scripts and environment names of `infra/main.tf`: v1 registered and promoted; v2
/// registered and ramped to 10% while an invocation sleeps on v1, the replaced v1 registration
/// left in place because 90% still goes to it; a retried registration harmless; v2 promoted
/// and v1 retired only once its invocation finished (on v1); a wrong token refused; destroy
/// leaving the active version registered.
#[test]
fn terraform_module_provisioners_register_ramp_promote_and_retire() {
    let p = Pipeline::start();
    let all = terraform_provisioners();
    let env = |arn: String, ramp: &str, token: &str| {
        vec![
            ("PERDURE_CLI", env!("CARGO_BIN_EXE_perdure").to_owned()),
            ("PERDURE_ADMIN_URL", p.perdure.admin.clone()),
            ("PERDURE_AUTH_TOKEN", token.to_owned()),
            ("PERDURE_RETIRE_TIMEOUT", "90s".to_owned()),
            ("PERDURE_ARN", arn),
            ("PERDURE_ASSUME_ROLE_ARN", String::new()),
            ("PERDURE_BREAKING", "false".to_owned()),
            ("PERDURE_RAMP_PERCENT", ramp.to_owned()),
            ("PERDURE_RETIRE", "true".to_owned()),
        ]
    };
    let ok = |r: (bool, String), what: &str| {
        assert!(r.0, "{what} failed:\n{}", r.1);
        r.1
    };
    // What the module's deployment_id output reads: GET /deployments, the one at the ARN.
    let id_of = |arn: &str| {
        p.deployments().into_iter().find(|d| d["arn"] == json!(arn)).and_then(|d| d["id"].as_str().map(str::to_owned))
    };

    // apply 1: v1.
    ok(provision(&all, "terraform_data.registration", "create", &env(p.arn("1"), "", TOKEN)), "register v1");
    ok(provision(&all, "terraform_data.routing", "create", &env(p.arn("1"), "", TOKEN)), "promote v1");
    let dp1 = id_of(&p.arn("1")).expect("v1 registered");
    assert_eq!(p.deployment(&dp1).1["drain_status"], "active");
    let inv1 = p.sleepy(5000);

    // apply 2: v2 at 10%; the replaced registration of v1 is destroyed, but v1 still serves 90%.
    ok(provision(&all, "terraform_data.registration", "create", &env(p.arn("2"), "", TOKEN)), "register v2");
    let again = provision(&all, "terraform_data.registration", "create", &env(p.arn("2"), "", TOKEN));
    assert!(again.0, "registering the same version again (a retried apply) must succeed:\n{}", again.1);
    ok(provision(&all, "terraform_data.routing", "create", &env(p.arn("2"), "10", TOKEN)), "ramp v2");
    let dp2 = id_of(&p.arn("2")).expect("v2 registered");
    let (_, greeter) = p.admin(reqwest::Method::GET, "/services/Greeter", None);
    assert_eq!(greeter["deployment_id"], json!(dp1), "{greeter}");
    assert_eq!(greeter["ramp"]["deployment_id"], json!(dp2), "{greeter}");
    let kept = ok(
        provision(&all, "terraform_data.registration", "destroy", &env(p.arn("1"), "", TOKEN)),
        "retire v1 (ramped)",
    );
    assert!(kept.contains("active"), "{kept}");
    assert_eq!(p.deployment(&dp1).0, 200, "v1 still serves 90%: left registered");

    // apply 3: ramp_percent = null promotes v2 and retires v1 once its invocation finished.
    let promoted = ok(provision(&all, "terraform_data.routing", "create", &env(p.arn("2"), "", TOKEN)), "promote v2");
    assert!(promoted.contains(&format!("Retired deployment {dp1}")), "{promoted}");
    assert_eq!(p.deployment(&dp1).0, 404, "v1 retired");
    assert_eq!(p.finished_on(&inv1), "v1", "the invocation finished on the version it started on");

    // A wrong token: refused, named, nothing changed.
    let (refused, text) =
        provision(&all, "terraform_data.registration", "create", &env(p.arn("3"), "", "not-the-token"));
    assert!(!refused && text.contains("401"), "{text}");
    assert!(id_of(&p.arn("3")).is_none());

    // terraform destroy: the registration of v2 goes, but v2 is what Greeter runs on: kept.
    let kept = ok(provision(&all, "terraform_data.registration", "destroy", &env(p.arn("2"), "", TOKEN)), "destroy");
    assert!(kept.contains("active"), "{kept}");
    assert_eq!(p.deployment(&dp2).0, 200);
}
