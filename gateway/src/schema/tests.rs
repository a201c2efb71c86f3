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
        manifest,
        sdk_version: None,
        now: 1_000,
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
        .update(|s| register(s, registration("http://v1/", manifest("")), &defaults))
        .await
        .unwrap();
    let stored_after_one = db.storage().get_meta(SCHEMA_KEY).unwrap();
    registry
        .update(|s| register(s, registration("http://v2/", manifest(r#",{"name":"wave"}"#)), &defaults))
        .await
        .unwrap();
    let expected = json(&registry.snapshot());
    assert_eq!(registry.snapshot().services["Greeter"].revision, 2);

    // The stored schema fell behind (as after a crash before it was written): the log has it.
    db.storage().put_meta(&[(SCHEMA_KEY, &stored_after_one.unwrap()), (APPLIED_KEY, &1u64.to_be_bytes())]).unwrap();
    assert_eq!(json(&SchemaRegistry::load(db.storage(), log()).await.unwrap().snapshot()), expected);
    // With nothing stored at all, the whole log replays to the same schema.
    db.storage().put_meta(&[(SCHEMA_KEY, &serde_json::to_vec(&*before).unwrap()), (APPLIED_KEY, &0u64.to_be_bytes())]).unwrap();
    let rebuilt = SchemaRegistry::load(db.storage(), log()).await.unwrap();
    assert_eq!(json(&rebuilt.snapshot()), expected);
    // And changes continue after the replayed tail.
    rebuilt.update(|s| register(s, registration("http://v3/", manifest("")), &defaults)).await.unwrap();
    assert_eq!(rebuilt.snapshot().services["Greeter"].revision, 3);
}
