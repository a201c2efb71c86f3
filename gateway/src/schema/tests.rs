//! Schema tests: registrations computed against a schema, and the schema log.

use std::collections::BTreeMap;

use super::*;
use crate::protocol::manifest::parse_manifest;
use crate::storage::Database;
use crate::storage::log::LogId;

/// A manifest like the TypeScript SDK's, with `extra` handlers added to Greeter.
pub fn manifest(extra_greeter_handlers: &str) -> crate::protocol::Manifest {
    let json = format!(
        r#"{{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":7,"services":[
        {{"name":"Greeter","ty":"SERVICE","handlers":[{{"name":"greet"}}{extra_greeter_handlers}]}},
        {{"name":"Counter","ty":"VIRTUAL_OBJECT","handlers":[{{"name":"add","ty":"EXCLUSIVE"}},{{"name":"get","ty":"SHARED"}}]}}]}}"#
    );
    parse_manifest(Some("application/vnd.restate.endpointmanifest.v3+json"), json.as_bytes()).expect("test manifest")
}

pub fn registration(uri: &str, manifest: crate::protocol::Manifest) -> RegisterRequest {
    RegisterRequest {
        endpoint: Endpoint::Http { uri: uri.into(), http_version: HttpVersion::Http2 },
        additional_headers: BTreeMap::new(),
        metadata: BTreeMap::new(),
        force: false,
        breaking: false,
        dry_run: false,
        promote: true,
        manifest,
        sdk_version: None,
        now: 1_000,
        lambda_versions: LambdaVersions::default(),
    }
}

/// What a test says is in flight.
#[derive(Default)]
pub struct Pending {
    pub handlers: BTreeMap<String, u64>,
    pub pinned: BTreeMap<DeploymentId, Vec<crate::ids::InvocationId>>,
}

impl InFlight for Pending {
    fn pending(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        Ok(self.handlers.clone())
    }

    fn pinned(&self, d: &DeploymentId, limit: usize) -> Result<(u64, Vec<crate::ids::InvocationId>), StorageError> {
        let ids = self.pinned.get(d).cloned().unwrap_or_default();
        Ok((ids.len() as u64, ids.into_iter().take(limit).collect()))
    }
}

fn json(schema: &Schema) -> String {
    serde_json::to_string(schema).unwrap()
}

#[tokio::test]
async fn the_schema_log_rebuilds_the_schema_when_the_stored_one_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), &Default::default(), 1).unwrap();
    let log = || RocksLog::open(db.storage(), db.log_writer(), LogId::Schema, 0).unwrap();
    let defaults = SchemaDefaults::default();
    let registry = SchemaRegistry::load(db.storage(), log()).await.unwrap();
    let before = registry.snapshot();
    registry
        .update(|s| register(s, registration("http://v1/", manifest("")), &defaults, &Pending::default()))
        .await
        .unwrap();
    let stored_after_one = db.storage().get_meta(SCHEMA_KEY).unwrap();
    registry
        .update(|s| {
            register(s, registration("http://v2/", manifest(r#",{"name":"wave"}"#)), &defaults, &Pending::default())
        })
        .await
        .unwrap();
    let expected = json(&registry.snapshot());
    assert_eq!(registry.snapshot().services["Greeter"].revision, 2);

    // The stored schema fell behind (as after a crash before it was written): the log has it.
    db.storage().put_meta(&[(SCHEMA_KEY, &stored_after_one.unwrap()), (APPLIED_KEY, &1u64.to_be_bytes())]).unwrap();
    assert_eq!(json(&SchemaRegistry::load(db.storage(), log()).await.unwrap().snapshot()), expected);
    // With nothing stored at all, the whole log replays to the same schema.
    db.storage()
        .put_meta(&[(SCHEMA_KEY, &serde_json::to_vec(&*before).unwrap()), (APPLIED_KEY, &0u64.to_be_bytes())])
        .unwrap();
    let rebuilt = SchemaRegistry::load(db.storage(), log()).await.unwrap();
    assert_eq!(json(&rebuilt.snapshot()), expected);
    // And changes continue after the replayed tail.
    rebuilt
        .update(|s| register(s, registration("http://v3/", manifest("")), &defaults, &Pending::default()))
        .await
        .unwrap();
    assert_eq!(rebuilt.snapshot().services["Greeter"].revision, 3);
}

/// A manifest with exactly these services (JSON array text).
fn services(json: &str) -> crate::protocol::Manifest {
    let json =
        format!(r#"{{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":7,"services":{json}}}"#);
    parse_manifest(Some("application/vnd.restate.endpointmanifest.v3+json"), json.as_bytes()).expect("test manifest")
}

/// Registers and stores `req` on `schema`; the outcome's changes, or the refusal.
fn put(schema: &mut Schema, req: RegisterRequest, in_flight: &Pending) -> Result<RegisterOutcome, RegistrationError> {
    let (change, outcome) = register(schema, req, &SchemaDefaults::default(), in_flight)?;
    if let Some(change) = change {
        schema.apply(change);
    }
    Ok(outcome)
}

fn refusal(r: Result<RegisterOutcome, RegistrationError>) -> (String, Option<&'static str>, Vec<Change>, usize) {
    match r {
        Err(RegistrationError::Conflict { message, code, changes, invocations }) => {
            (message, code, changes, invocations.len())
        }
        other => panic!("expected a 409, got {other:?}"),
    }
}

fn breaking(req: RegisterRequest) -> RegisterRequest {
    RegisterRequest { breaking: true, ..req }
}

const COUNTER: &str = r#"{"name":"Counter","ty":"VIRTUAL_OBJECT","handlers":[{"name":"add","ty":"EXCLUSIVE"},{"name":"get","ty":"SHARED"}]}"#;

#[test]
fn a_service_type_change_is_refused_with_meta0006_unless_breaking_or_force() {
    let mut schema = Schema::default();
    let none = Pending::default();
    put(&mut schema, registration("http://v1/", services(&format!("[{COUNTER}]"))), &none).unwrap();
    let as_service = services(r#"[{"name":"Counter","ty":"SERVICE","handlers":[{"name":"add"},{"name":"get"}]}]"#);
    let (message, code, _, _) = refusal(put(&mut schema, registration("http://v2/", as_service.clone()), &none));
    assert_eq!(code, Some("META0006"));
    assert!(
        message.starts_with(
            "[META0006] Cannot update the schema: Counter: the service type changes from VIRTUAL_OBJECT to SERVICE"
        ),
        "{message}"
    );
    assert_eq!(schema.services["Counter"].revision, 1, "nothing stored");
    let forced = RegisterRequest { force: true, ..registration("http://v2/", as_service.clone()) };
    put(&mut schema, forced, &none).unwrap();
    assert_eq!(schema.services["Counter"].revision, 2);
    put(&mut schema, breaking(registration("http://v3/", services(&format!("[{COUNTER}]")))), &none).unwrap();
    assert_eq!(schema.services["Counter"].revision, 3);
}

#[test]
fn a_handler_that_changes_kind_is_refused_naming_service_handler_and_change() {
    let mut schema = Schema::default();
    let none = Pending::default();
    put(&mut schema, registration("http://v1/", services(&format!("[{COUNTER}]"))), &none).unwrap();
    let flipped = services(
        r#"[{"name":"Counter","ty":"VIRTUAL_OBJECT","handlers":[{"name":"add","ty":"EXCLUSIVE"},{"name":"get","ty":"EXCLUSIVE"}]}]"#,
    );
    let (message, code, changes, _) = refusal(put(&mut schema, registration("http://v2/", flipped.clone()), &none));
    assert_eq!(code, None);
    assert!(message.contains("Counter/get: turns from SHARED into EXCLUSIVE"), "{message}");
    assert!(changes.iter().any(|c| c.handler.as_deref() == Some("get") && c.breaking));
    let accepted = put(&mut schema, breaking(registration("http://v2/", flipped)), &none).unwrap();
    assert!(accepted.changes().iter().any(|c| c.describe() == "Counter/get: turns from SHARED into EXCLUSIVE"));
    assert_eq!(schema.services["Counter"].revision, 2);
}

#[test]
fn a_removed_handler_is_refused_only_while_invocations_of_it_are_pending() {
    let mut schema = Schema::default();
    put(&mut schema, registration("http://v1/", manifest(r#",{"name":"wave"}"#)), &Pending::default()).unwrap();
    let busy = Pending { handlers: [("Greeter/wave".to_owned(), 3)].into(), ..Default::default() };
    let (message, ..) = refusal(put(&mut schema, registration("http://v2/", manifest("")), &busy));
    assert!(message.contains("Greeter/wave: removed, while 3 invocations of it are not completed"), "{message}");
    // Without pending work the removal is fine, as in Restate, and reported.
    let outcome = put(&mut schema, registration("http://v2/", manifest("")), &Pending::default()).unwrap();
    assert!(outcome.changes().iter().any(|c| c.describe() == "Greeter/wave: removed" && !c.breaking));
    assert!(outcome.changes().iter().any(|c| c.describe() == "Greeter: revision 1 -> 2"));
}

#[test]
fn content_type_and_json_schema_changes_are_checked() {
    let with = |input: &str, output: &str| {
        services(&format!(
            r#"[{{"name":"Shop","ty":"SERVICE","handlers":[{{"name":"buy","input":{input},"output":{output}}}]}}]"#
        ))
    };
    let item = r#"{"contentType":"application/json","jsonSchema":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer"}},"required":["sku"]}}"#;
    let receipt =
        r#"{"contentType":"application/json","jsonSchema":{"type":"object","properties":{"ok":{"type":"boolean"}}}}"#;
    let none = Pending::default();
    let mut schema = Schema::default();
    put(&mut schema, registration("http://v1/", with(item, receipt)), &none).unwrap();

    let text = r#"{"contentType":"text/plain"}"#;
    let (message, ..) = refusal(put(&mut schema, registration("http://v2/", with(text, receipt)), &none));
    assert!(message.contains("Shop/buy: input content type application/json -> text/plain"), "{message}");
    let (message, ..) =
        refusal(put(&mut schema, registration("http://v2/", with(item, r#"{"contentType":"text/plain"}"#)), &none));
    assert!(message.contains("Shop/buy: output content type application/json -> text/plain"), "{message}");

    let stricter = item.replace(r#""required":["sku"]"#, r#""required":["sku","qty"]"#);
    let (message, ..) = refusal(put(&mut schema, registration("http://v2/", with(&stricter, receipt)), &none));
    assert!(
        message.contains("Shop/buy: the input schema no longer accepts what it did: qty becomes required"),
        "{message}"
    );
    let looser_output = receipt.replace(r#""type":"boolean""#, r#""type":["boolean","string"]"#);
    let (message, ..) = refusal(put(&mut schema, registration("http://v2/", with(item, &looser_output)), &none));
    assert!(
        message.contains("the output schema allows what it did not: 'ok' may no longer be of type string"),
        "{message}"
    );

    // Widening the input and narrowing the output are compatible, and reported.
    let wider = item.replace(r#""required":["sku"]"#, r#""required":[]"#);
    let outcome = put(&mut schema, registration("http://v2/", with(&wider, receipt)), &none).unwrap();
    assert!(
        outcome.changes().iter().any(|c| c.change.contains("still accepts what it did")),
        "{:?}",
        outcome.changes()
    );
    assert_eq!(schema.services["Shop"].revision, 2);
}

#[test]
fn an_endpoint_is_immutable_and_force_overwrites_only_what_nothing_is_pinned_to() {
    let mut schema = Schema::default();
    let none = Pending::default();
    let first = put(&mut schema, registration("http://v1/", manifest("")), &none).unwrap();
    let id = first.deployment().id;
    // Same endpoint, same manifest: the same deployment.
    assert!(
        matches!(put(&mut schema, registration("http://v1/", manifest("")), &none).unwrap(), RegisterOutcome::Unchanged(d) if d.id == id)
    );
    // Different manifest: refused, naming what differs.
    let (message, ..) = refusal(put(&mut schema, registration("http://v1/", manifest(r#",{"name":"wave"}"#)), &none));
    assert!(message.contains(&format!("deployment {id} at 'http://v1/' is already registered with a different manifest (service 'Greeter' changed)")), "{message}");

    // With invocations pinned to it, force alone is refused and lists them.
    let pinned: Vec<_> = (0..25).map(crate::ids::InvocationId::generate).collect();
    let held = Pending { pinned: [(id, pinned)].into(), ..Default::default() };
    let only_greeter = services(r#"[{"name":"Greeter","ty":"SERVICE","handlers":[{"name":"greet"},{"name":"wave"}]}]"#);
    let forced = || RegisterRequest { force: true, ..registration("http://v1/", only_greeter.clone()) };
    let (message, _, _, listed) = refusal(put(&mut schema, forced(), &held));
    assert!(message.starts_with(&format!("25 invocations are pinned to deployment {id}")), "{message}");
    assert_eq!(listed, LISTED);
    // force + breaking overwrites it anyway.
    put(&mut schema, breaking(forced()), &held).unwrap();
    assert_eq!(schema.services["Greeter"].revision, 2);

    // Nothing pinned: force overwrites in place, and the service the new manifest lacks goes.
    let mut schema = Schema::default();
    put(&mut schema, registration("http://v1/", manifest("")), &none).unwrap();
    let id = schema.deployments.keys().next().copied().unwrap();
    let outcome = put(&mut schema, forced(), &none).unwrap();
    assert!(matches!(&outcome, RegisterOutcome::Overwritten(d, _) if d.id == id));
    assert!(
        outcome.changes().iter().any(|c| c.describe() == "Counter: removed by the overwrite"),
        "{:?}",
        outcome.changes()
    );
    assert!(
        !schema.services.contains_key("Counter"),
        "a dropped service no longer points at the overwritten deployment"
    );
    assert_eq!(schema.deployments.len(), 1);
}

#[test]
fn a_dry_run_reports_every_change_and_stores_nothing() {
    let mut schema = Schema::default();
    let none = Pending::default();
    put(&mut schema, registration("http://v1/", manifest(r#",{"name":"wave"}"#)), &none).unwrap();
    let before = json(&schema);
    let next = services(&format!(
        r#"[{{"name":"Greeter","ty":"SERVICE","handlers":[{{"name":"greet"}},{{"name":"hello"}}]}},{COUNTER},{{"name":"New","ty":"SERVICE","handlers":[{{"name":"x"}}]}}]"#
    ));
    let dry = RegisterRequest { dry_run: true, ..registration("http://v2/", next) };
    let (change, outcome) = register(&schema, dry, &SchemaDefaults::default(), &none).unwrap();
    assert!(change.is_none());
    assert_eq!(json(&schema), before);
    let described: Vec<String> = outcome.changes().iter().map(Change::describe).collect();
    for expected in [
        "Greeter: revision 1 -> 2",
        "Greeter/wave: removed",
        "Greeter/hello: added",
        "Counter: revision 1 -> 2",
        "New: new service",
    ] {
        assert!(described.iter().any(|d| d == expected), "{expected} in {described:?}");
    }
    // A dry run is refused exactly like the real registration (the CLI relies on the 409).
    let busy = Pending { handlers: [("Greeter/wave".to_owned(), 1)].into(), ..Default::default() };
    let dry = RegisterRequest { dry_run: true, ..registration("http://v2/", manifest("")) };
    refusal(register(&schema, dry, &SchemaDefaults::default(), &busy).map(|(_, o)| o));
}

/// Applies a routing move to `schema`; what it did.
fn moved(
    schema: &mut Schema,
    r: impl FnOnce(&Schema) -> Result<(Option<SchemaChange>, Routed), RoutingError>,
) -> Routed {
    let (change, routed) = r(schema).expect("the move is allowed");
    if let Some(change) = change {
        schema.apply(change);
    }
    routed
}

#[test]
fn an_unpromoted_registration_takes_a_revision_but_no_traffic_until_promoted() {
    let mut schema = Schema::default();
    let none = Pending::default();
    let v1 = put(&mut schema, registration("http://v1/", manifest("")), &none).unwrap().deployment().id;
    let unpromoted = RegisterRequest { promote: false, ..registration("http://v2/", manifest(r#",{"name":"wave"}"#)) };
    let v2 = put(&mut schema, unpromoted, &none).unwrap().deployment().id;
    assert_eq!(schema.services["Greeter"].deployment_id, v1, "new invocations stay on v1");
    assert_eq!(schema.services["Greeter"].revision, 1);
    assert_eq!(schema.revision_on(&v2, "Greeter").unwrap().revision, 2, "v2 took revision 2");
    assert_eq!(schema.routed_to(&v2), Vec::<String>::new());

    let routed = moved(&mut schema, |schema| promote(schema, "Greeter", v2, false, &BTreeMap::new()));
    assert_eq!(routed.service.deployment_id, v2);
    assert!(
        routed.changes.iter().any(|c| c.handler.as_deref() == Some("wave") && c.change == "added"),
        "{:?}",
        routed.changes
    );
    assert_eq!(schema.services["Greeter"].deployment_id, v2);
    assert_eq!(schema.services["Greeter"].revision, 3, "a promotion is a new revision");
    assert_eq!(schema.services["Counter"].deployment_id, v1, "promoting one service moves only that one");
    // Promoting where it is already: nothing changes.
    let (change, _) = promote(&schema, "Greeter", v2, false, &BTreeMap::new()).unwrap();
    assert!(change.is_none());

    // Rolling back goes to the deployment before, as revision 4.
    let back = moved(&mut schema, |s| {
        rollback_target(s, "Greeter").and_then(|to| promote(s, "Greeter", to, false, &BTreeMap::new()))
    });
    assert_eq!(back.service.deployment_id, v1);
    assert_eq!(schema.services["Greeter"].revision, 4);
    // And again goes forward to v2, the one before that.
    assert_eq!(rollback_target(&schema, "Greeter").unwrap(), v2);
}

#[test]
fn a_promotion_is_checked_like_a_registration_and_hiding_survives_it() {
    let mut schema = Schema::default();
    let none = Pending::default();
    let v1 =
        put(&mut schema, registration("http://v1/", manifest(r#",{"name":"wave"}"#)), &none).unwrap().deployment().id;
    let v2 = put(&mut schema, registration("http://v2/", manifest("")), &none).unwrap().deployment().id;
    // Back to v1 adds 'wave' again: fine. Forward to v2 with 'wave' invocations pending: refused.
    moved(&mut schema, |schema| promote(schema, "Greeter", v1, false, &BTreeMap::new()));
    let mut hidden = schema.services["Greeter"].clone();
    hidden.public = false;
    schema.apply(SchemaChange::PutService { service: Box::new(hidden) });
    let pending = BTreeMap::from([("Greeter/wave".to_owned(), 3u64)]);
    match promote(&schema, "Greeter", v2, false, &pending) {
        Err(RoutingError::Refused(RegistrationError::Conflict { message, .. })) => {
            assert!(message.contains("Greeter/wave: removed, while 3 invocations of it are not completed"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let routed = moved(&mut schema, |schema| promote(schema, "Greeter", v2, true, &pending));
    assert!(!routed.service.public, "the operator's hiding carries over");
    assert!(matches!(promote(&schema, "Nope", v2, false, &none.handlers), Err(RoutingError::NotServed { .. })));
    assert!(matches!(
        promote(&schema, "Greeter", DeploymentId::generate(), false, &none.handlers),
        Err(RoutingError::UnknownDeployment(_))
    ));
    let mut only = Schema::default();
    put(&mut only, registration("http://v1/", manifest("")), &none).unwrap();
    assert!(matches!(rollback_target(&only, "Greeter"), Err(RoutingError::Invalid(_))));
}

#[test]
fn a_ramp_splits_new_invocations_by_percent_and_objects_by_key() {
    let mut schema = Schema::default();
    let none = Pending::default();
    let v1 = put(&mut schema, registration("http://v1/", manifest("")), &none).unwrap().deployment().id;
    let v2 = put(&mut schema, RegisterRequest { promote: false, ..registration("http://v2/", manifest("")) }, &none)
        .unwrap()
        .deployment()
        .id;
    assert!(matches!(ramp(&schema, "Greeter", v2, 101, false, &BTreeMap::new()), Err(RoutingError::BadPercent(101))));
    assert!(matches!(ramp(&schema, "Greeter", v1, 10, false, &BTreeMap::new()), Err(RoutingError::Invalid(_))));
    moved(&mut schema, |schema| ramp(schema, "Greeter", v2, 10, false, &BTreeMap::new()));
    moved(&mut schema, |schema| ramp(schema, "Counter", v2, 30, false, &BTreeMap::new()));
    assert_eq!(schema.routed_to(&v2), vec!["Counter".to_owned(), "Greeter".to_owned()]);

    let on_v2 = (0..10_000u64)
        .filter(|i| schema.route("Greeter", None, &crate::ids::InvocationId::generate(*i)).unwrap().deployment_id == v2)
        .count();
    assert!((800..1200).contains(&on_v2), "10% of 10000 went to v2: {on_v2}");
    let keys: Vec<String> = (0..2000).map(|i| format!("key-{i}")).collect();
    let key_on_v2 = |key: &str| {
        schema.route("Counter", Some(key), &crate::ids::InvocationId::generate(rand::random())).unwrap().deployment_id
            == v2
    };
    let share = keys.iter().filter(|k| key_on_v2(k)).count();
    assert!((500..700).contains(&share), "30% of 2000 keys went to v2: {share}");
    for k in keys.iter().take(200) {
        let first = key_on_v2(k);
        assert!((0..5).all(|_| key_on_v2(k) == first), "key {k} moved");
    }

    // 0 ends a ramp; 100 promotes; removing the ramped deployment ends it too.
    moved(&mut schema, |schema| ramp(schema, "Greeter", v2, 0, false, &BTreeMap::new()));
    assert!(!schema.ramps.contains_key("Greeter"));
    moved(&mut schema, |schema| ramp(schema, "Greeter", v2, 100, false, &BTreeMap::new()));
    assert_eq!(schema.services["Greeter"].deployment_id, v2);
    schema.apply(SchemaChange::RemoveDeployment { id: v2, services: schema.latest_on(&v2) });
    assert!(schema.ramps.is_empty());
    assert!(!schema.services.contains_key("Greeter"));
    assert_eq!(schema.services["Counter"].deployment_id, v1);
}

#[test]
fn a_schema_stored_before_routing_history_gets_it_rebuilt_so_old_deployments_read_as_drained() {
    let mut schema = Schema::default();
    let none = Pending::default();
    let v1 = put(&mut schema, registration("http://v1/", manifest("")), &none).unwrap().deployment().id;
    let v2 = put(&mut schema, RegisterRequest { now: 2_000, ..registration("http://v2/", manifest("")) }, &none)
        .unwrap()
        .deployment()
        .id;
    let json = serde_json::to_string(&schema).unwrap();
    let start = json.find(r#","ramps":"#).expect("ramps and history are stored last");
    let old = format!("{}}}", &json[..start]);
    let loaded = decode_schema(old.as_bytes()).unwrap();
    assert!(loaded.ever_routed(&v1) && loaded.ever_routed(&v2));
    assert_eq!(loaded.history["Greeter"], vec![v1, v2]);
    assert_eq!(rollback_target(&loaded, "Greeter").unwrap(), v1);
}

#[test]
fn a_lambda_version_behind_an_alias_is_checked_like_a_revision_and_a_failing_one_holds_new_work() {
    let mut schema = Schema::default();
    let alias = "arn:aws:lambda:us-east-1:123456789012:function:greeter:live";
    let mut req = registration(alias, manifest(r#",{"name":"sleepy"}"#));
    req.endpoint = Endpoint::Lambda { arn: alias.into(), assume_role_arn: None };
    req.lambda_versions.seen.insert("1".into(), LambdaVersionCheck { compatible: true, changes: vec![], seen_at: 1 });
    let d = put(&mut schema, req, &Pending::default()).unwrap().deployment().clone();
    assert!(d.endpoint.is_lambda_alias());
    let defaults = SchemaDefaults::default();

    // The same code, or only more of it: passes.
    let same = check_lambda_version(&d, &d.manifest, &defaults, 2);
    assert!(same.compatible && same.changes.is_empty(), "{same:?}");
    let more = check_lambda_version(&d, &manifest(r#",{"name":"sleepy"},{"name":"wave"}"#), &defaults, 2);
    assert!(more.compatible && !more.changes.is_empty(), "{more:?}");
    // A handler gone (the ingress still takes calls to it), or a service type changed: fails.
    let gone = check_lambda_version(&d, &manifest(""), &defaults, 3);
    assert!(!gone.compatible && gone.changes.iter().any(|c| c.contains("Greeter/sleepy")), "{gone:?}");
    let retyped = services(
        r#"[{"name":"Greeter","ty":"VIRTUAL_OBJECT","handlers":[{"name":"greet"},{"name":"sleepy"}]},
        {"name":"Counter","ty":"VIRTUAL_OBJECT","handlers":[{"name":"add","ty":"EXCLUSIVE"},{"name":"get","ty":"SHARED"}]}]"#,
    );
    assert!(!check_lambda_version(&d, &retyped, &defaults, 3).compatible);

    // Recorded: a failing version holds new work at the newest one that passed; one that
    // passes lifts the hold.
    schema.apply(SchemaChange::LambdaVersion { deployment: d.id, version: "2".into(), check: more });
    schema.apply(SchemaChange::LambdaVersion { deployment: d.id, version: "3".into(), check: gone });
    assert_eq!(schema.deployments[&d.id].lambda_versions.held_at.as_deref(), Some("2"));
    schema.apply(SchemaChange::LambdaVersion { deployment: d.id, version: "4".into(), check: same });
    assert_eq!(schema.deployments[&d.id].lambda_versions.held_at, None);
    assert_eq!(schema.deployments[&d.id].lambda_versions.seen.len(), 4);
}
