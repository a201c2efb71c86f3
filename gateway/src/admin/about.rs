//! What the admin API says about the server itself (`/version`, `/cluster-health`) and about
//! the parts of Restate it does not have (`/subscriptions`, `/kafka-clusters`). The `restate`
//! CLI, the CDK construct and Restate's UI read these to choose their code paths, so each
//! answer has Restate 1.7's shape; where perdure has nothing to report, the comment says why
//! the answer is what it is.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::Error;

/// `GET /version`. `features` are Restate's switches for server features still being rolled
/// out (virtual queues, protocol V7, scoped objects, Kafka scopes, …). perdure has none of
/// them, and Restate 1.7 itself answers every one `false` by default, so clients take the
/// 1.7 code paths they were tested against. The list is Restate 1.7.12's, name for name: a
/// client reading a flag it does not find may assume a default of its own.
pub async fn version(State(state): State<super::State>) -> Json<Value> {
    Json(json!({
        "version": crate::RESTATE_COMPATIBLE_VERSION,
        "min_admin_api_version": 2,
        "max_admin_api_version": 4,
        "ingress_endpoint": state.ingress_url,
        "features": {
            "vqueues_async_refill": false, "scoped_virtual_objects": false,
            "preflight_invocation_termination_retention": false, "vqueue_obsolete_cleanup": false,
            "scoped_state_table_migration": false, "vqueues": false, "unique_random_seeds": false,
            "protocol_v7": false, "vqueues_migration_skip_completed": false, "invoker_yield": false,
            "scoped_promise_table_migration": false, "kafka_scope": false
        },
        "server": format!("perdure/{}", env!("CARGO_PKG_VERSION")),
    }))
}

/// `GET /cluster-health`: what a one-node Restate answers (its embedded metadata store has
/// one member, node 1). perdure has no metadata cluster; what it can lose is a partition,
/// whose task stops at a command it cannot apply or a storage failure while the rest of the
/// server goes on serving. Then the node is not healthy: 503 with Restate's error body,
/// naming the partitions that stopped.
pub async fn cluster_health(State(state): State<super::State>) -> Result<Json<Value>, Error> {
    health_of(&state.partitions)
}

fn health_of(partitions: &crate::partition::Handle) -> Result<Json<Value>, Error> {
    let stopped: Vec<String> = partitions
        .ingress_queues()
        .iter()
        .enumerate()
        .filter(|(_, queue)| queue.is_none())
        .map(|(partition, _)| partition.to_string())
        .collect();
    match stopped.as_slice() {
        [] => Ok(Json(json!({ "cluster_name": "perdure", "metadata_cluster_health": { "members": [1] } }))),
        [one] => Err(Error::Unhealthy(format!("partition {one} has stopped (the server log says why)"))),
        many => Err(Error::Unhealthy(format!("partitions {} have stopped (the server log says why)", many.join(", ")))),
    }
}

/// `GET /subscriptions`: always none. Subscriptions feed Kafka topics into handlers, and
/// perdure has no Kafka ingestion; an empty list (rather than 404) lets the CLI and the UI
/// show "no subscriptions" as they would for a Restate without any.
pub async fn subscriptions() -> Json<Value> {
    Json(json!({ "subscriptions": [] }))
}

/// `GET /kafka-clusters`: always none, for the same reason as [`subscriptions`].
pub async fn kafka_clusters() -> Json<Value> {
    Json(json!({ "clusters": [] }))
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;

    use super::*;

    #[tokio::test]
    async fn cluster_health_is_a_one_node_answer_until_a_partition_stops() {
        let (partitions, mut inboxes) = crate::partition::Handle::new(3, 8);
        let healthy = health_of(&partitions).expect("every partition runs");
        assert_eq!(healthy.0, json!({ "cluster_name": "perdure", "metadata_cluster_health": { "members": [1] } }));

        drop(inboxes.remove(1));
        let response = health_of(&partitions).expect_err("partition 1 stopped").into_response();
        assert_eq!(response.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        let message = body["message"].as_str().expect("Restate's error body: {\"message\", \"restate_code\"}");
        assert!(message.contains("partition 1 has stopped"), "{message}");

        inboxes.clear();
        let message = health_of(&partitions).expect_err("all stopped").to_string();
        assert!(message.contains("partitions 0, 1, 2 have stopped"), "{message}");
    }
}
