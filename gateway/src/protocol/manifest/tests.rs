//! Manifest parsing tests, with manifests shaped like the ones real SDKs return.

use super::*;
use crate::protocol::ServiceProtocolVersion;

const V2: &str = "application/vnd.restate.endpointmanifest.v2+json";
const V3: &str = "application/vnd.restate.endpointmanifest.v3+json";
const V4: &str = "application/vnd.restate.endpointmanifest.v4+json";

/// Like the TypeScript SDK's answer: three service types, min 5 / max 7.
const TS_MANIFEST: &str = r#"{"minProtocolVersion":5,"maxProtocolVersion":7,"services":[
  {"name":"Greeter","ty":"SERVICE","handlers":[
    {"name":"greet","input":{"required":false,"contentType":"application/json"},
     "output":{"setContentTypeIfEmpty":false,"contentType":"application/json"}}]},
  {"name":"Counter","ty":"VIRTUAL_OBJECT","handlers":[
    {"name":"add","ty":"EXCLUSIVE","input":{"required":false,"contentType":"application/json"},
     "output":{"setContentTypeIfEmpty":false,"contentType":"application/json"}},
    {"name":"get","ty":"SHARED"},
    {"name":"reset"}]},
  {"name":"SleepWorkflow","ty":"WORKFLOW","handlers":[
    {"name":"run","ty":"WORKFLOW"},{"name":"status","ty":"SHARED"}]}],
  "protocolMode":"BIDI_STREAM"}"#;

/// Manifest v3/v4 keys, Python-style schemas, and keys this server does not know.
const V4_MANIFEST: &str = r#"{"protocolMode":"REQUEST_RESPONSE","minProtocolVersion":5,
  "maxProtocolVersion":7,"lambdaCompression":"zstd","someFutureKey":{"x":1},
  "services":[{"name":"_internal.Svc-1","ty":"VIRTUAL_OBJECT","documentation":"counts",
    "metadata":{"team":"core"},"inactivityTimeout":60000,"abortTimeout":600000,
    "journalRetention":86400000,"idempotencyRetention":3600000,"enableLazyState":true,
    "ingressPrivate":false,"retryPolicyInitialInterval":500,"retryPolicyMaxInterval":60000,
    "retryPolicyMaxAttempts":70,"retryPolicyExponentiationFactor":2.0,
    "retryPolicyOnMaxAttempts":"KILL","unknownServiceKey":true,
    "handlers":[{"name":"_1add","ty":"EXCLUSIVE","metadata":null,
      "input":{"required":true,"contentType":"application/json","jsonSchema":{"type":"integer"}},
      "output":{"contentType":"application/json","jsonSchema":{"type":"integer"}},
      "retryPolicyOnMaxAttempts":"PAUSE","enableLazyState":false}]},
   {"name":"Wf","ty":"WORKFLOW","handlers":[{"name":"run","workflowCompletionRetention":1000}]}]}"#;

fn with(json: &str, replace: &str, by: &str) -> Vec<u8> {
    assert!(json.contains(replace), "test setup: {replace:?} not in manifest");
    json.replacen(replace, by, 1).into_bytes()
}

#[test]
fn parses_a_typescript_manifest_for_each_manifest_version() {
    for content_type in [V2, V3, V4] {
        let manifest = parse_manifest(Some(content_type), TS_MANIFEST.as_bytes()).expect(content_type);
        assert_eq!(manifest.protocol_mode, ProtocolMode::BidiStream);
        assert_eq!((manifest.min_protocol_version, manifest.max_protocol_version), (5, 7));
        let names: Vec<_> = manifest.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Greeter", "Counter", "SleepWorkflow"]);

        let greeter = manifest.service("Greeter").expect("Greeter");
        assert_eq!(greeter.ty, ServiceType::Service);
        let greet = greeter.handler("greet").expect("greet");
        assert_eq!(greet.effective_ty(greeter.ty), None);
        assert_eq!(greet.input.as_ref().and_then(|i| i.content_type.as_deref()), Some("application/json"));

        let counter = manifest.service("Counter").expect("Counter");
        let ty_of = |name: &str| counter.handler(name).and_then(|h| h.effective_ty(counter.ty));
        assert_eq!(ty_of("add"), Some(HandlerType::Exclusive));
        assert_eq!(ty_of("get"), Some(HandlerType::Shared));
        assert_eq!(ty_of("reset"), Some(HandlerType::Exclusive), "objects default to EXCLUSIVE");
        assert_eq!(counter.handler("reset").map(|h| h.input_or_default().content_type), Some(Some("*/*".into())));
    }
}

#[test]
fn parses_v4_fields_and_ignores_unknown_keys() {
    let manifest = parse_manifest(Some(V4), V4_MANIFEST.as_bytes()).expect("valid v4 manifest");
    assert_eq!(manifest.protocol_mode, ProtocolMode::RequestResponse);
    assert_eq!(manifest.lambda_compression.as_deref(), Some("zstd"));
    let service = &manifest.services[0];
    assert_eq!(service.name, "_internal.Svc-1");
    assert_eq!(service.metadata.get("team").map(String::as_str), Some("core"));
    assert_eq!(service.settings.inactivity_timeout, Some(60_000));
    assert_eq!(service.settings.enable_lazy_state, Some(true));
    assert_eq!(service.settings.retry_policy_max_attempts, Some(70));
    assert_eq!(service.settings.retry_policy_exponentiation_factor, Some(2.0));
    assert_eq!(service.settings.retry_policy_on_max_attempts, Some(OnMaxAttempts::Kill));
    let handler = &service.handlers[0];
    assert!(handler.metadata.is_empty(), "null metadata reads as empty");
    assert_eq!(handler.settings.retry_policy_on_max_attempts, Some(OnMaxAttempts::Pause));
    let input = handler.input.as_ref().expect("input");
    assert_eq!(input.required, Some(true));
    assert_eq!(input.json_schema, Some(serde_json::json!({"type": "integer"})));
    let workflow = manifest.service("Wf").expect("Wf");
    let run = workflow.handler("run").expect("run");
    assert_eq!(run.effective_ty(workflow.ty), Some(HandlerType::Workflow), "workflow default");
    assert_eq!(run.workflow_completion_retention, Some(1000));
}

#[test]
fn manifest_survives_a_serde_round_trip() {
    let manifest = parse_manifest(Some(V4), V4_MANIFEST.as_bytes()).expect("valid");
    let json = serde_json::to_vec(&manifest).expect("serializes");
    assert_eq!(parse_manifest(Some(V4), &json).expect("re-parses"), manifest);
}

#[test]
fn missing_protocol_mode_is_named() {
    let body = with(TS_MANIFEST, r#""protocolMode":"BIDI_STREAM""#, r#""other":1"#);
    let err = parse_manifest(Some(V4), &body).expect_err("no protocolMode");
    assert!(matches!(err, ManifestError::MissingProtocolMode), "{err}");
    assert!(err.to_string().contains("protocolMode"));
}

#[test]
fn content_type_must_be_a_known_manifest_type() {
    for bad in [
        None,
        Some("application/json"),
        Some("application/vnd.restate.endpointmanifest.v5+json"),
        Some("application/vnd.restate.endpointmanifest.v4+json; charset=utf-8"),
    ] {
        let err = parse_manifest(bad, TS_MANIFEST.as_bytes()).expect_err("bad content type");
        assert!(matches!(&err, ManifestError::ContentType { received } if received.as_deref() == bad));
        if let Some(bad) = bad {
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
    assert!(parse_manifest(Some("application/vnd.restate.endpointmanifest.v1+json"), TS_MANIFEST.as_bytes()).is_ok());
    assert_eq!(manifest_version(V3), Some(3));
}

#[test]
fn version_range_must_overlap_the_servers() {
    let body = with(
        TS_MANIFEST,
        r#""minProtocolVersion":5,"maxProtocolVersion":7"#,
        r#""minProtocolVersion":7,"maxProtocolVersion":9"#,
    );
    let err = parse_manifest(Some(V4), &body).expect_err("[7, 9] does not overlap [5, 6]");
    assert!(matches!(err, ManifestError::UnsupportedVersions { min: 7, max: 9 }));
    let text = err.to_string();
    assert!(text.contains("[7, 9]") && text.contains("[5, 6]"), "{text}");

    let manifest = parse_manifest(Some(V4), TS_MANIFEST.as_bytes()).expect("[5, 7] overlaps");
    let chosen = choose_version(manifest.min_protocol_version, manifest.max_protocol_version);
    assert_eq!(chosen, Some(ServiceProtocolVersion::V6));

    for (min, max) in [(0, 6), (6, 5)] {
        let range = format!(r#""minProtocolVersion":{min},"maxProtocolVersion":{max}"#);
        let body = with(TS_MANIFEST, r#""minProtocolVersion":5,"maxProtocolVersion":7"#, &range);
        let err = parse_manifest(Some(V4), &body).expect_err("malformed range");
        assert!(matches!(err, ManifestError::InvalidVersionRange { .. }), "{err}");
    }
}

#[test]
fn service_names_are_checked() {
    for bad in ["1Greeter", "_", "_-x", "Gr eeter", "Grüße", ""] {
        let body = with(TS_MANIFEST, r#""name":"Greeter""#, &format!(r#""name":"{bad}""#));
        let err = parse_manifest(Some(V4), &body).expect_err(bad);
        assert!(matches!(&err, ManifestError::InvalidServiceName(name) if name == bad), "{bad}: {err}");
    }
    for good in ["a", "_a", "_1", "my.pkg.Greeter-v2_x"] {
        let body = with(TS_MANIFEST, r#""name":"Greeter""#, &format!(r#""name":"{good}""#));
        assert!(parse_manifest(Some(V4), &body).is_ok(), "{good}");
    }
}

#[test]
fn handler_names_are_checked() {
    for bad in ["my.handler", "my-handler", "9lives", "__"] {
        let body = with(TS_MANIFEST, r#""name":"greet""#, &format!(r#""name":"{bad}""#));
        let err = parse_manifest(Some(V4), &body).expect_err(bad);
        assert!(matches!(&err, ManifestError::InvalidHandlerName { handler, .. } if handler == bad), "{err}");
    }
}

#[test]
fn handler_types_must_fit_the_service_type() {
    let cases = [
        (r#"{"name":"greet","input""#, r#"{"name":"greet","ty":"SHARED","input""#),
        (r#""name":"get","ty":"SHARED""#, r#""name":"get","ty":"WORKFLOW""#),
        (r#""name":"status","ty":"SHARED""#, r#""name":"status","ty":"EXCLUSIVE""#),
    ];
    for (replace, by) in cases {
        let err = parse_manifest(Some(V4), &with(TS_MANIFEST, replace, by)).expect_err(by);
        assert!(matches!(err, ManifestError::HandlerTypeNotAllowed { .. }), "{err}");
    }
}

#[test]
fn malformed_bodies_are_errors() {
    let cases: [&[u8]; 4] = [b"", b"not json", b"[1,2]", br#"{"protocolMode":"SOMETIMES","services":[]}"#];
    for body in cases {
        assert!(parse_manifest(Some(V4), body).is_err(), "{}", String::from_utf8_lossy(body));
    }
    let duplicate = with(TS_MANIFEST, r#""name":"Counter""#, r#""name":"Greeter""#);
    assert!(matches!(parse_manifest(Some(V4), &duplicate), Err(ManifestError::DuplicateService(_))));
}

#[test]
fn discovery_accept_lists_manifest_versions_one_to_four() {
    assert_eq!(
        DISCOVERY_ACCEPT,
        "application/vnd.restate.endpointmanifest.v1+json, application/vnd.restate.endpointmanifest.v2+json, \
         application/vnd.restate.endpointmanifest.v3+json, application/vnd.restate.endpointmanifest.v4+json"
    );
}
