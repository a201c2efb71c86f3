//! The node port as operators use it: Prometheus scraping `/metrics` during a workload, and
//! gRPC health, reflection and node status through a real tonic client.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use perdure::node::proto::node_status_client::NodeStatusClient;
use perdure::node::proto::{GetStatusRequest, LeaderState};

use crate::harness::*;

/// One parsed sample: the metric's name and labels, and its value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parses Prometheus text format (what a scraper reads), checking each line's shape.
fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in '{line}'"));
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("bad value in '{line}': {e}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in '{line}'"));
                let mut labels = BTreeMap::new();
                // Label values here hold no commas or quotes.
                for pair in rest.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("bad label in '{line}'"));
                    labels.insert(k.to_owned(), v.trim_matches('"').to_owned());
                }
                (name.to_owned(), labels)
            }
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad metric name in '{line}'");
        out.insert((name, labels), value);
    }
    out
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.get(&(name.to_owned(), labels.clone())).copied().unwrap_or_else(|| {
        let similar: Vec<_> = samples.keys().filter(|(n, _)| n == name).collect();
        panic!("no {name}{labels:?}; have {similar:?}")
    })
}

fn scrape(perdure: &Perdure) -> (String, Samples) {
    let r = get(&format!("{}/metrics", perdure.node));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"), "{:?}", r.headers);
    let samples = parse(&r.body);
    (r.body, samples)
}

#[test]
fn metrics_count_a_workload() {
    let perdure = Perdure::start();
    let svc = TsServices::start("h2", "v1");
    let deployment = perdure.deploy(&svc.url(), json!({}));

    for i in 0..20 {
        let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), &format!("\"n{i}\""));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for _ in 0..5 {
        let r = post_json(&format!("{}/Greeter/greet/send", perdure.ingress), "\"s\"");
        assert_eq!(r.status, 202, "{}", r.body);
    }
    assert_eq!(post_json(&format!("{}/Nobody/greet", perdure.ingress), "\"x\"").status, 404);
    assert_eq!(post_json(&format!("{}/Greeter/nothing", perdure.ingress), "\"x\"").status, 404);

    // The sends finish on their own; every attempt is counted when its stream has closed.
    let ok = [("deployment", deployment.as_str()), ("protocol", "http2"), ("outcome", "ok")];
    let samples = eventually(Duration::from_secs(30), "25 completed invocations and attempts in /metrics", || {
        let (_, s) = scrape(&perdure);
        let done =
            s.get(&("perdure_invocations_completed_total".into(), [("outcome".into(), "success".into())].into()));
        let attempts =
            s.get(&("perdure_attempts_total".into(), ok.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
        (done.copied() == Some(25.0) && attempts.copied() == Some(25.0)).then_some(s)
    });
    let greet = [("service", "Greeter"), ("handler", "greet")];
    let call = [greet[0], greet[1], ("kind", "call"), ("status", "200")];
    assert_eq!(value(&samples, "perdure_ingress_requests_total", &call), 20.0);
    let send = [greet[0], greet[1], ("kind", "send"), ("status", "202")];
    assert_eq!(value(&samples, "perdure_ingress_requests_total", &send), 5.0);
    // Unknown targets (Nobody/greet, Greeter/nothing) count without their names: the label
    // set stays bounded whatever clients send.
    let unrouted = [("service", ""), ("handler", ""), ("kind", "call"), ("status", "404")];
    assert_eq!(value(&samples, "perdure_ingress_requests_total", &unrouted), 2.0);
    assert!(!samples.keys().any(|(_, l)| l.values().any(|v| v == "Nobody")), "no label for an unknown service");
    assert!(!samples.keys().any(|(_, l)| l.values().any(|v| v.starts_with("inv_"))), "never an invocation id");
    let unknown_handler = [("service", "Greeter"), ("handler", "nothing"), ("kind", "call"), ("status", "404")];
    assert!(!samples.contains_key(&(
        "perdure_ingress_requests_total".into(),
        unknown_handler.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    )));
    let call_histogram = [greet[0], greet[1], ("kind", "call")];
    assert_eq!(value(&samples, "perdure_ingress_request_duration_seconds_count", &call_histogram), 20.0);
    let inf = [greet[0], greet[1], ("kind", "call"), ("le", "+Inf")];
    assert_eq!(value(&samples, "perdure_ingress_request_duration_seconds_bucket", &inf), 20.0);

    assert_eq!(value(&samples, "perdure_attempts_total", &ok), 25.0);
    let on = [("deployment", deployment.as_str()), ("protocol", "http2")];
    assert_eq!(value(&samples, "perdure_attempt_duration_seconds_count", &on), 25.0);

    // Every invocation and every journal step went through the log's group commit: each of the
    // 20 calls appended at least twice (its invoke, then its attempt's effects, which cannot
    // share the invoke's group), each of the 5 sends at least once (it is answered once its
    // invoke is durable). A loaded machine groups more, so this is a floor, not a count.
    assert!(value(&samples, "perdure_log_append_duration_seconds_count", &[]) >= 45.0);
    let entries = value(&samples, "perdure_log_commit_batch_entries_sum", &[]);
    let groups = value(&samples, "perdure_log_commit_batch_entries_count", &[]);
    assert!(groups >= 1.0 && entries >= groups, "{entries} entries in {groups} groups");
    assert_eq!(value(&samples, "perdure_log_fsync_duration_seconds_count", &[]), groups);

    assert_eq!(value(&samples, "perdure_deployments", &[("drain_status", "active")]), 1.0);
    assert_eq!(value(&samples, "perdure_deployments", &[("drain_status", "draining")]), 0.0);
    let pinned = [("deployment", deployment.as_str()), ("status", "running")];
    assert_eq!(value(&samples, "perdure_deployment_pinned_invocations", &pinned), 0.0);
    for p in ["0", "1", "2"] {
        assert_eq!(value(&samples, "perdure_partition_leader", &[("partition", p)]), 1.0);
        assert_eq!(value(&samples, "perdure_partition_ingress_queue_depth", &[("partition", p)]), 0.0);
    }
    assert!(value(&samples, "perdure_rocksdb_memtable_bytes", &[]) > 0.0);
    assert!(value(&samples, "perdure_rocksdb_block_cache_bytes", &[]) >= 0.0);
    assert!(value(&samples, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&samples, "process_cpu_seconds_total", &[]) > 0.0);
    assert_eq!(value(&samples, "perdure_invoker_attempts_running", &[]), 0.0);
    assert!(!samples.keys().any(|(n, _)| n == "perdure_ingress_shed_total"), "nothing was shed");
}

#[test]
fn metrics_show_a_draining_deployment_and_its_pinned_invocation() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let old = perdure.deploy(&v1.url(), json!({}));
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "60000");
    assert_eq!(r.status, 202, "{}", r.body);
    let suspended = [("deployment", old.as_str()), ("status", "suspended")];
    eventually(Duration::from_secs(30), "the sleeping invocation counted as suspended", || {
        let (_, s) = scrape(&perdure);
        let key = (
            "perdure_deployment_pinned_invocations".to_owned(),
            suspended.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        );
        let running = (
            "perdure_deployment_pinned_invocations".to_owned(),
            [("deployment".to_owned(), old.clone()), ("status".to_owned(), "running".to_owned())].into(),
        );
        (s.get(&key).copied().unwrap_or(0.0) + s.get(&running).copied().unwrap_or(0.0) == 1.0).then_some(())
    });
    let v2 = TsServices::start("h2", "v2");
    let (status, body) = perdure.register(&v2.url(), json!({}));
    assert!(status == 201 || status == 200, "{body}");
    let (_, samples) = scrape(&perdure);
    assert_eq!(value(&samples, "perdure_deployments", &[("drain_status", "active")]), 1.0);
    assert_eq!(value(&samples, "perdure_deployments", &[("drain_status", "draining")]), 1.0);
}

#[test]
fn grpc_health_reflection_and_node_status() {
    let perdure = Perdure::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(perdure.node.clone()).unwrap().connect().await.unwrap();

        let mut health = HealthClient::new(channel.clone());
        for service in ["", "perdure.node.v1.NodeStatus"] {
            let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
        }
        let unknown = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);

        let status = NodeStatusClient::new(channel.clone()).get_status(GetStatusRequest {}).await.unwrap().into_inner();
        assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(status.restate_compatible_version, "1.7.12");
        assert_eq!(status.partitions.len(), 3);
        assert_eq!(status.partitions[0].start_key, 0);
        assert_eq!(status.partitions[2].end_key, u64::MAX);
        for (i, p) in status.partitions.iter().enumerate() {
            assert_eq!(p.id, i as u32);
            assert_eq!(p.leader_state(), LeaderState::Leader);
            if i > 0 {
                assert_eq!(p.start_key, status.partitions[i - 1].end_key + 1, "contiguous key ranges");
            }
        }
        assert_eq!(status.deployments_by_drain_status.get("active"), Some(&0));

        // Reflection, as grpcurl's `list` asks it.
        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers =
            reflection.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
        let answer = answers.message().await.unwrap().expect("an answer");
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else { panic!("{answer:?}") };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for expected in ["perdure.node.v1.NodeStatus", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"] {
            assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
        }
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol("perdure.node.v1.NodeStatus".into())),
        };
        let mut answers =
            reflection.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
        let answer = answers.message().await.unwrap().expect("an answer");
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("{answer:?}")
        };
        assert!(!files.file_descriptor_proto.is_empty());
    });
}

#[test]
fn the_node_port_takes_the_admin_tokens() {
    let token = "node-port-token-0123456789";
    let perdure = Perdure::start_with(&[("PERDURE_ADMIN__AUTH_TOKENS", token)]);
    assert_eq!(get(&format!("{}/health", perdure.node)).status, 200);
    let r = get(&format!("{}/metrics", perdure.node));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("admin.auth-tokens"), "{}", r.body);
    let r = http().get(format!("{}/metrics", perdure.node)).bearer_auth(token).send().unwrap();
    assert_eq!(r.status(), 200);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(perdure.node.clone()).unwrap().connect().await.unwrap();
        // Health stays open (load balancers and orchestrators probe it without secrets).
        let r = HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await.unwrap();
        assert_eq!(r.into_inner().status(), ServingStatus::Serving);
        let refused = NodeStatusClient::new(channel.clone()).get_status(GetStatusRequest {}).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        let mut request = tonic::Request::new(GetStatusRequest {});
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let status = NodeStatusClient::new(channel).get_status(request).await.unwrap().into_inner();
        assert_eq!(status.partitions.len(), 3);
    });
}

#[test]
fn the_node_port_can_be_turned_off() {
    let perdure = Perdure::start_with(&[("PERDURE_NODE__ENABLED", "false")]);
    assert_eq!(perdure.node, "off");
    assert_eq!(get(&format!("{}/health", perdure.admin)).status, 200);
}
