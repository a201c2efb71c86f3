//! Property-based fuzzing of the HTTP boundaries against the real server: arbitrary ingress
//! requests (methods, paths, query strings, headers, bodies) to a server with real Rust SDK
//! services behind it, and arbitrary admin requests with JSON bodies of every shape. Every
//! request gets an answer; the server's own errors are 4xx (or the documented 5xx of a
//! failed discovery), never a panic, a dropped connection or a crash, and the server still
//! serves afterwards. `PERDURE_FUZZ_CASES` sets the number of requests.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::harness::*;
use crate::rust_sdk::RustServices;

fn cases(default: u32) -> u32 {
    std::env::var("PERDURE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Path segments that mean something to the ingress, and some that do not.
fn ingress_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        4 => proptest::sample::select(vec![
            "RustGreeter", "RustCounter", "greet", "napThenGreet", "countVisit", "refuse", "add", "get", "lazyAdd", "keys",
            "restate", "send", "call", "invocation", "workflow", "attach", "output", "lookup", "awakeables", "a", "health",
            "resolve", "reject", "scope", "k1", "inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "sign_1xyz", "Unknown",
        ]).prop_map(str::to_owned),
        1 => "([a-zA-Z0-9_.~-]|%[0-9a-fA-F]{2}|%[g-z]?){0,12}",
    ];
    let query = prop_oneof![
        3 => Just(String::new()),
        1 => "(10ms|PT1S|0|-1|1e9d|99999999999999d|PT99999999999999H|abc|)".prop_map(|d| format!("?delay={d}")),
        1 => "[a-z=&%0-9]{0,12}".prop_map(|q| format!("?{q}")),
    ];
    (proptest::collection::vec(segment, 0..6), query, any::<bool>())
        .prop_map(|(segments, query, slash)| format!("/{}{}{query}", segments.join("/"), if slash { "/" } else { "" }))
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(String::into_bytes),
        proptest::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..20),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = proptest::sample::select(vec![
        "content-type",
        "idempotency-key",
        "accept",
        "origin",
        "x-restate-id",
        "traceparent",
        "x-anything",
        "content-encoding",
        "expect",
    ])
    .prop_map(str::to_owned);
    let content_type = proptest::sample::select(vec![
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "*/*",
        "application/x-www-form-urlencoded",
    ]);
    (proptest::option::of(content_type), proptest::collection::vec((name, header_value()), 0..4)).prop_map(
        |(ct, mut rest)| {
            if let Some(ct) = ct {
                rest.push(("content-type".into(), ct.as_bytes().to_vec()));
            }
            rest
        },
    )
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        proptest::sample::select(vec![
            "http://127.0.0.1:1",
            "http://127.0.0.1:1/",
            "https://example.com",
            "ftp://x",
            "http://[::1",
            "http://:0",
            "arn:aws:lambda:eu-central-1:123456789012:function:f:1",
            "arn:aws:lambda:x",
            "10s",
            "1d",
            "36501d",
            "PT1S",
            "0",
            "inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
    ]
}

fn ingress_request() -> impl Strategy<Value = Req> {
    let method =
        proptest::sample::select(vec!["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);
    (method, ingress_path(), headers(), body()).prop_map(|(method, path, headers, body)| Req {
        method,
        path,
        headers,
        body,
    })
}

/// Admin requests: the routes it serves, with fields that matter filled in from anywhere.
fn admin_request() -> impl Strategy<Value = Req> {
    let field_value = prop_oneof![json_value(), Just(Value::Null)];
    let deployment_body = (
        field_value.clone(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(field_value.clone()),
        proptest::option::of(json_value()),
    )
        .prop_map(|(uri, force, dry_run, use_http_11, extra)| {
            let mut b = json!({ "uri": uri, "force": force, "dry_run": dry_run, "use_http_11": use_http_11 });
            if let Some(extra) = extra {
                b["additional_headers"] = extra;
            }
            b
        });
    let service_body =
        (field_value.clone(), field_value.clone(), field_value.clone(), field_value.clone(), field_value).prop_map(
            |(public, idempotency, journal, inactivity, abort)| {
                json!({ "public": public, "idempotency_retention": idempotency, "journal_retention": journal,
                    "inactivity_timeout": inactivity, "abort_timeout": abort, "workflow_completion_retention": null })
            },
        );
    let id = prop_oneof![
        Just("inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()),
        Just("dp_10357y2vY9Z7AjngDBinAtw".to_owned()),
        "[a-zA-Z0-9_%]{0,30}",
    ];
    let version = proptest::sample::select(vec!["", "/v1", "/v2", "/v3", "/v4", "/v9"]);
    prop_oneof![
        (version.clone(), deployment_body, headers()).prop_map(|(v, b, h)| Req {
            method: "POST",
            path: format!("{v}/deployments"),
            headers: h,
            body: serde_json::to_vec(&b).unwrap()
        }),
        (version.clone(), proptest::sample::select(vec!["RustGreeter", "RustCounter", "Nope"]), service_body).prop_map(
            |(v, s, b)| Req {
                method: "PATCH",
                path: format!("{v}/services/{s}"),
                headers: vec![("content-type".into(), b"application/json".to_vec())],
                body: serde_json::to_vec(&b).unwrap()
            }
        ),
        (
            version.clone(),
            id.clone(),
            proptest::sample::select(vec![
                "cancel",
                "kill",
                "purge",
                "purge-journal",
                "restart-as-new",
                "pause",
                "resume",
                "nope"
            ])
        )
            .prop_map(|(v, id, op)| Req {
                method: "PATCH",
                path: format!("{v}/invocations/{id}/{op}"),
                headers: vec![],
                body: vec![]
            }),
        (version.clone(), id.clone(), "(mode=(cancel|kill|purge|x)?)?").prop_map(|(v, id, q)| Req {
            method: "DELETE",
            path: format!("{v}/invocations/{id}?{q}"),
            headers: vec![],
            body: vec![]
        }),
        (
            version,
            proptest::sample::select(vec![
                "/deployments",
                "/services",
                "/services/RustGreeter",
                "/services/RustGreeter/handlers",
                "/services/RustGreeter/handlers/greet",
                "/services/RustGreeter/handlers/x",
                "/health",
                "/version",
                "/openapi",
                "/cluster-health",
                "/query",
                "/deployments/",
                "/nope",
            ]),
            id,
            proptest::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
            body()
        )
            .prop_map(|(v, p, id, method, body)| Req {
                method,
                path: if p == "/deployments/" { format!("{v}{p}{id}") } else { format!("{v}{p}") },
                headers: vec![("content-type".into(), b"application/json".to_vec())],
                body
            }),
    ]
}

/// Sends a request; `None` if it could not even be expressed as an HTTP request.
fn send(client: &reqwest::blocking::Client, base: &str, req: &Req) -> Option<Result<(u16, String, String), String>> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).ok()?;
    let url = reqwest::Url::parse(&format!("{base}{}", req.path)).ok()?;
    let mut builder = client.request(method, url).body(req.body.clone());
    for (name, value) in &req.headers {
        let value = reqwest::header::HeaderValue::from_bytes(value).ok()?;
        builder = builder.header(name.as_str(), value);
    }
    let built = builder.build().ok()?;
    Some(client.execute(built).map_err(|e| format!("{e:?}")).map(|r| {
        let status = r.status().as_u16();
        let source = r.headers().get("x-restate-error-source").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        (status, source, r.text().unwrap_or_default())
    }))
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap()
}

#[test]
fn arbitrary_ingress_and_admin_requests_get_answers_and_never_hurt_the_server() {
    let (mut perdure, _svc) = Perdure::start_capturing(&[("PERDURE_RETRY_POLICY__MAX_ATTEMPTS", "3")])
        .serving(RustServices::start(), json!({}));
    let client = client();

    let (answered, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner(cases(1500))
        .run(&ingress_request(), |req| {
            let Some(outcome) = send(&client, &perdure.ingress, &req) else { return Ok(()) };
            let (status, source, body) =
                outcome.map_err(|e| TestCaseError::fail(format!("no answer to {req:?}: {e}")))?;
            answered.set(answered.get() + 1);
            refused.set(refused.get() + (status >= 400) as u32);
            // Errors of the ingress itself are the client's fault (4xx); a handler's own
            // terminal error (source = the deployment) may carry any code.
            prop_assert!(!(status >= 500 && source == "ingress"), "{req:?} -> {status}: {body}");
            Ok(())
        })
        .unwrap();
    println!("ingress: {} requests answered, {} refused", answered.get(), refused.get());

    answered.set(0);
    runner(cases(800))
        .run(&admin_request(), |req| {
            let Some(outcome) = send(&client, &perdure.admin, &req) else { return Ok(()) };
            let (status, _, body) = outcome.map_err(|e| TestCaseError::fail(format!("no answer to {req:?}: {e}")))?;
            answered.set(answered.get() + 1);
            // 500 only for a failed discovery (it names its META code), 501 for what is not built yet.
            let discovery = status == 500 && body.contains("META0");
            prop_assert!(status < 500 || discovery || status == 501, "{req:?} -> {status}: {body}");
            Ok(())
        })
        .unwrap();
    println!("admin: {} requests answered", answered.get());

    assert!(perdure.is_running(), "the server is still up");
    // The fuzzer may legitimately have hidden the service or set tiny timeouts: undo that.
    let reset = client
        .patch(format!("{}/services/RustGreeter", perdure.admin))
        .json(&json!({ "public": true, "inactivity_timeout": "1m", "abort_timeout": "10m" }))
        .send()
        .unwrap();
    assert_eq!(reset.status().as_u16(), 200, "{}", reset.text().unwrap_or_default());
    assert_eq!(
        post_json(&format!("{}/RustGreeter/greet", perdure.ingress), "\"after\"").body,
        "\"Hi after, from Rust\""
    );
    assert!(get(&format!("{}/health", perdure.admin)).status == 200);
    let log = perdure.log();
    assert!(!log.contains("panic"), "the server panicked:\n{log}");
    assert!(perdure.stop().success(), "a clean shutdown after the fuzzing");
}
