//! `GET /openapi`: an OpenAPI 3.1 document of the admin API as implemented here. A test
//! checks that every route of the router appears in it, so the two cannot drift apart.

use axum::Json;
use axum::response::IntoResponse;
use serde_json::{Value, json};

fn error_responses() -> Value {
    json!({
        "400": { "description": "Bad request", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDescriptionResponse" } } } },
        "404": { "description": "Not found", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDescriptionResponse" } } } },
        "500": { "description": "Internal server error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDescriptionResponse" } } } }
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

/// `responses` plus the common error responses.
fn with(mut responses: Value) -> Value {
    if let (Some(r), Value::Object(e)) = (responses.as_object_mut(), error_responses()) {
        for (k, v) in e {
            r.entry(k).or_insert(v);
        }
    }
    responses
}

/// A POST that moves a service's new invocations (perdure: promote, rollback, ramp).
fn routing(summary: &str, operation: &str, body: Value) -> Value {
    json!({ "post": {
        "summary": summary,
        "operationId": operation,
        "parameters": [path_param("service", "Service name")],
        "requestBody": { "content": { "application/json": { "schema": body } } },
        "responses": with(json!({
            "200": ok("The service's latest revision afterwards (with its ramp), and what changed", "RoutingResponse"),
            "409": { "description": "A breaking change (without breaking=true), a deployment that does not serve the service, or nothing to roll back to", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDescriptionResponse" } } } }
        }))
    } })
}

/// A PATCH on one invocation.
fn control(summary: &str, operation: &str, ok_description: &str) -> Value {
    json!({ "patch": {
        "summary": summary,
        "operationId": operation,
        "parameters": [path_param("invocation_id", "Invocation id (inv_…)")],
        "responses": with(json!({
            "200": { "description": ok_description },
            "409": { "description": "The invocation is in a state that does not allow it", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDescriptionResponse" } } } }
        }))
    } })
}

pub fn spec() -> Value {
    let mut doc = document_base();
    for (path, item) in routing_paths() {
        doc["paths"][path] = item;
    }
    for (path, summary, operation) in [
        (
            "/deployments/{deployment}/pause",
            "perdure: an emergency stop: no new attempt starts on the deployment; its invocations (and new ones routed to it) wait as paused",
            "pause_deployment",
        ),
        (
            "/deployments/{deployment}/resume",
            "perdure: attempts start on the deployment again; the invocations its pause held go on",
            "resume_deployment",
        ),
    ] {
        doc["paths"][path] = json!({ "post": {
            "summary": summary, "operationId": operation,
            "parameters": [path_param("deployment", "Deployment id (dp_…)")],
            "responses": with(json!({ "200": ok("The deployment as it is now (paused: true|false)", "DetailedDeploymentResponse") }))
        } });
    }
    doc["paths"]["/invocations/{invocation_id}"]["get"] = json!({
        "summary": "perdure: where an invocation stands (status, pinned deployment and revision, attempts, last failure)",
        "operationId": "get_invocation", "parameters": [path_param("invocation_id", "Invocation id (inv_…)")],
        "responses": with(json!({ "200": { "description": "The invocation", "content": { "application/json": {} } } })) });
    doc["paths"]["/deployments/prune"] = json!({ "post": {
        "summary": "perdure: remove drained deployments (nothing routed to them, nothing pinned) beyond the newest `keep`",
        "operationId": "prune_deployments",
        "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": {
            "keep": { "type": "integer", "minimum": 0, "default": 0 }, "dry_run": { "type": "boolean", "default": false } } } } } },
        "responses": with(json!({ "200": { "description": "{\"dry_run\": bool, \"removed\": [{\"id\", \"address\"}]}", "content": { "application/json": {} } } })) } });
    doc["paths"]["/deployments/{deployment}/invocations"] = json!({ "get": {
        "summary": "perdure: the not-completed invocations pinned to a deployment (from its index)",
        "operationId": "list_pinned_invocations",
        "parameters": [path_param("deployment", "Deployment id (dp_…)"), { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 10000, "default": 100 } }],
        "responses": with(json!({ "200": { "description": "{\"invocations\": [...]}", "content": { "application/json": {} } } })) } });
    if let Some(params) = doc["paths"]["/invocations/{invocation_id}/resume"]["patch"]["parameters"].as_array_mut() {
        params.push(json!({ "name": "deployment", "in": "query", "required": false,
            "description": "keep (default), latest, or a deployment id: where the next attempt runs (it replays the journal there)",
            "schema": { "type": "string" } }));
    }
    let schemas = &mut doc["components"]["schemas"];
    schemas["ServiceMetadata"]["properties"]["ramp"] = json!({
        "type": "object", "description": "perdure: a share of new invocations going to another deployment",
        "properties": { "deployment_id": { "type": "string" }, "percent": { "type": "integer" } } });
    schemas["RoutingResponse"] = json!({ "type": "object", "required": ["service", "changes"], "properties": {
        "service": { "$ref": "#/components/schemas/ServiceMetadata" },
        "changes": { "type": "array", "items": { "$ref": "#/components/schemas/SchemaChange" } },
        "dry_run": { "type": "boolean" } } });
    doc
}

/// perdure's own service routes: promote, rollback and ramp.
fn routing_paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/services/{service}/promote",
            routing(
                "perdure: send the service's new invocations to a registered deployment (an unpromoted newer one, or an earlier one), as a new revision checked like a registration",
                "promote_service",
                json!({ "type": "object", "required": ["deployment"], "properties": {
                    "deployment": { "type": "string", "description": "Deployment id (dp_…)" },
                    "breaking": { "type": "boolean", "default": false }, "dry_run": { "type": "boolean", "default": false } } }),
            ),
        ),
        (
            "/services/{service}/rollback",
            routing(
                "perdure: send the service's new invocations back to the deployment they went to before (or the one named)",
                "rollback_service",
                json!({ "type": "object", "properties": {
                    "deployment": { "type": "string", "description": "Deployment id (dp_…); default: the previous one" },
                    "breaking": { "type": "boolean", "default": false }, "dry_run": { "type": "boolean", "default": false } } }),
            ),
        ),
        (
            "/services/{service}/ramp",
            routing(
                "perdure: send a percentage of the service's new invocations to another deployment (by key for objects and workflows); 0 ends the ramp, 100 promotes",
                "ramp_service",
                json!({ "type": "object", "required": ["deployment", "percent"], "properties": {
                    "deployment": { "type": "string", "description": "Deployment id (dp_…)" },
                    "percent": { "type": "integer", "minimum": 0, "maximum": 100 },
                    "breaking": { "type": "boolean", "default": false }, "dry_run": { "type": "boolean", "default": false } } }),
            ),
        ),
    ]
}

fn document_base() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "perdure admin API",
            "description": "Register deployments and inspect services of a perdure server. Compatible with the Restate 1.7 admin API; every path is also served under /v2, /v3 and /v4.",
            "license": { "name": "Apache-2.0 OR MIT" },
            "version": env!("CARGO_PKG_VERSION")
        },
        "paths": {
            "/health": { "get": { "summary": "Health check", "operationId": "health", "responses": { "200": { "description": "The server is up" } } } },
            "/version": { "get": { "summary": "Server and admin API versions", "operationId": "version", "responses": { "200": ok("Version information", "VersionInformation") } } },
            "/openapi": { "get": { "summary": "This document", "operationId": "openapi_spec", "responses": { "200": { "description": "OpenAPI 3.1 document", "content": { "application/json": {} } } } } },
            "/cluster-health": { "get": { "summary": "Cluster health (single node)", "operationId": "cluster_health", "deprecated": true, "responses": { "200": { "description": "Cluster health", "content": { "application/json": {} } }, "503": { "description": "A partition has stopped (the message names it)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDescriptionResponse" } } } } } } },
            "/deployments": {
                "get": { "summary": "List deployments", "operationId": "list_deployments", "responses": with(json!({ "200": ok("Registered deployments", "ListDeploymentsResponse") })) },
                "post": {
                    "summary": "Register deployment",
                    "description": "Discovers the services of an HTTP endpoint and registers them. The same endpoint with the same manifest answers 200 with the existing deployment; with a different manifest 409 unless `force` is set, and `force` over a deployment with pinned invocations 409 unless `breaking` is set too. Each new revision is checked against the latest one (service type, handler kind, removed handlers with pending work, content types, JSON schemas): a breaking change answers 409 naming service, handler and change, with `changes` listing every change, unless `breaking` (or `force`) is set. `changes` in the answer lists what the registration changed; a `dry_run` answers the same without storing anything.",
                    "operationId": "create_deployment",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RegisterDeploymentRequest" } } } },
                    "responses": with(json!({
                        "200": ok("Deployment already registered, unchanged (or overwritten with force)", "RegisterDeploymentResponse"),
                        "201": ok("Deployment registered", "RegisterDeploymentResponse"),
                        "409": { "description": "Breaking change or a different manifest at an existing endpoint", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorDescriptionResponse" } } } }
                    }))
                }
            },
            "/deployments/{deployment}": {
                "get": { "summary": "Get deployment", "operationId": "get_deployment", "parameters": [path_param("deployment", "Deployment id (dp_…)")], "responses": with(json!({ "200": ok("The deployment with its services and drain status", "DetailedDeploymentResponse") })) },
                "patch": { "summary": "Change a deployment's headers, or its address when discovery there returns the same manifest", "operationId": "update_deployment", "parameters": [path_param("deployment", "Deployment id (dp_…)")],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "uri": { "type": "string" }, "additional_headers": { "type": "object", "additionalProperties": { "type": "string" } },
                        "use_http_11": { "type": "boolean" }, "overwrite": { "type": "boolean", "description": "refused: a deployment is immutable" }, "dry_run": { "type": "boolean" } } } } } },
                    "responses": with(json!({ "200": ok("The deployment as it is now", "DetailedDeploymentResponse"), "409": { "description": "The new address serves different code" } })) },
                "delete": { "summary": "Remove a deployment: when drained, or with force=true (its pinned invocations end with an error)", "operationId": "delete_deployment",
                    "parameters": [path_param("deployment", "Deployment id (dp_…)"), { "name": "force", "in": "query", "required": false, "schema": { "type": "boolean" } }],
                    "responses": with(json!({ "202": { "description": "Removed" }, "409": { "description": "Not drained: serves a latest revision or has pinned invocations (listed, at most 20)" } })) }
            },
            "/services": { "get": { "summary": "List services", "operationId": "list_services", "responses": with(json!({ "200": ok("Latest revision of every service", "ListServicesResponse") })) } },
            "/services/{service}": {
                "get": { "summary": "Get service", "operationId": "get_service", "parameters": [path_param("service", "Service name")], "responses": with(json!({ "200": ok("The service", "ServiceMetadata") })) },
                "patch": { "summary": "Modify a service's settings (null fields stay as they are)", "operationId": "modify_service", "parameters": [path_param("service", "Service name")],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "public": { "type": ["boolean", "null"] }, "idempotency_retention": { "type": ["string", "null"] },
                        "workflow_completion_retention": { "type": ["string", "null"] }, "journal_retention": { "type": ["string", "null"] },
                        "inactivity_timeout": { "type": ["string", "null"] }, "abort_timeout": { "type": ["string", "null"] } } } } } },
                    "responses": with(json!({ "200": ok("The updated service", "ServiceMetadata") })) }
            },
            "/services/{service}/handlers": { "get": { "summary": "List service handlers", "operationId": "list_service_handlers", "parameters": [path_param("service", "Service name")], "responses": with(json!({ "200": ok("Handlers of the service", "ListServiceHandlersResponse") })) } },
            "/services/{service}/handlers/{handler}": { "get": { "summary": "Get service handler", "operationId": "get_service_handler", "parameters": [path_param("service", "Service name"), path_param("handler", "Handler name")], "responses": with(json!({ "200": ok("The handler", "HandlerMetadata") })) } },
            "/invocations/{invocation_id}": { "delete": { "summary": "Cancel, kill or purge an invocation (deprecated; fire and forget)", "operationId": "delete_invocation", "deprecated": true,
                "parameters": [path_param("invocation_id", "Invocation id (inv_…)"), { "name": "mode", "in": "query", "schema": { "enum": ["cancel", "kill", "purge"] } }],
                "responses": with(json!({ "202": { "description": "Accepted" } })) } },
            "/invocations/{invocation_id}/cancel": control("Cancel an invocation: the handler sees a cancellation and may compensate", "cancel_invocation", "202: the cancel signal was delivered; 200: it had not started and is now canceled"),
            "/invocations/{invocation_id}/kill": control("Kill an invocation and the invocations it called, without telling the handler", "kill_invocation", "Killed"),
            "/invocations/{invocation_id}/purge": control("Forget a completed invocation: result and journal", "purge_invocation", "Purged; 409 if not completed"),
            "/invocations/{invocation_id}/purge-journal": control("Drop the journal of a completed invocation, keep its result", "purge_journal", "Journal dropped; 409 if not completed"),
            "/invocations/{invocation_id}/restart-as-new": { "patch": { "summary": "Start a new invocation with the same target and input as a completed one", "operationId": "restart_as_new_invocation",
                "parameters": [path_param("invocation_id", "Invocation id (inv_…)"), { "name": "from", "in": "query", "schema": { "type": "integer", "enum": [0] } }, { "name": "deployment", "in": "query", "schema": { "enum": ["latest"] } }],
                "responses": with(json!({ "200": { "description": "The new invocation", "content": { "application/json": { "schema": { "type": "object", "properties": { "new_invocation_id": { "type": "string" } } } } } },
                    "409": { "description": "Still running" }, "410": { "description": "Journal no longer retained" }, "422": { "description": "Workflow runs cannot be restarted" }, "425": { "description": "Not started yet" } })) } },
            "/invocations/{invocation_id}/pause": control("Stop retrying an invocation until resumed", "pause_invocation", "200 already paused; 202 pausing"),
            "/invocations/{invocation_id}/resume": control("Start the next attempt of a paused (or suspended) invocation now", "resume_invocation", "Resumed"),
            "/query": { "post": { "summary": "Read-only SQL over the system tables (docs/sql-introspection.md lists them): an Arrow IPC stream, or {\"rows\": [...]} with Accept: application/json", "operationId": "query", "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["query"], "properties": { "query": { "type": "string" } } } } } }, "responses": { "200": { "description": "The result", "content": { "application/vnd.apache.arrow.stream": {}, "application/json": {} } }, "400": { "description": "The SQL does not parse, names what does not exist, or is not a read" }, "415": { "description": "Not application/json" } } } },
            "/subscriptions": { "get": { "summary": "List subscriptions (always empty: Kafka is not supported)", "operationId": "list_subscriptions", "responses": { "200": { "description": "Subscriptions", "content": { "application/json": {} } } } } },
            "/kafka-clusters": { "get": { "summary": "List Kafka clusters (always empty)", "operationId": "list_kafka_clusters", "responses": { "200": { "description": "Kafka clusters", "content": { "application/json": {} } } } } }
        },
        "components": { "schemas": {
            "ErrorDescriptionResponse": { "type": "object", "required": ["message"], "properties": { "message": { "type": "string" }, "restate_code": { "type": ["string", "null"] } } },
            "VersionInformation": { "type": "object", "required": ["version", "min_admin_api_version", "max_admin_api_version", "features"], "properties": {
                "version": { "type": "string" }, "min_admin_api_version": { "type": "integer" }, "max_admin_api_version": { "type": "integer" },
                "ingress_endpoint": { "type": ["string", "null"] }, "features": { "type": "object", "additionalProperties": { "type": "boolean" } } } },
            "RegisterDeploymentRequest": { "oneOf": [
                { "type": "object", "required": ["uri"], "properties": {
                    "uri": { "type": "string", "description": "Absolute http:// URL of the SDK endpoint" },
                    "additional_headers": { "type": ["object", "null"], "additionalProperties": { "type": "string" } },
                    "metadata": { "type": ["object", "null"], "additionalProperties": { "type": "string" } },
                    "use_http_11": { "type": "boolean", "default": false },
                    "breaking": { "type": "boolean", "default": false },
                    "force": { "type": "boolean" },
                    "dry_run": { "type": "boolean", "default": false },
                    "promote": { "type": "boolean", "default": true, "description": "perdure: false registers and checks it, but new invocations keep going where they went (the ingress header x-perdure-deployment reaches it)" } } },
                { "type": "object", "required": ["arn"], "description": "A Lambda function, invoked with Lambda Invoke (RequestResponse)", "properties": {
                    "arn": { "type": "string", "description": "arn:aws:lambda:REGION:ACCOUNT:function:NAME:QUALIFIER, a published version or an alias ($LATEST only with lambda.allow-latest). Behind an alias each invocation is pinned to the version that ran its first attempt" },
                    "assume_role_arn": { "type": ["string", "null"], "description": "An IAM role perdure assumes (STS) to invoke the function" },
                    "additional_headers": { "type": ["object", "null"], "additionalProperties": { "type": "string" } },
                    "metadata": { "type": ["object", "null"], "additionalProperties": { "type": "string" } },
                    "breaking": { "type": "boolean", "default": false },
                    "force": { "type": "boolean" },
                    "dry_run": { "type": "boolean", "default": false },
                    "promote": { "type": "boolean", "default": true } } }
            ] },
            "RegisterDeploymentResponse": { "type": "object", "required": ["id", "services"], "properties": {
                "id": { "type": "string" }, "services": { "type": "array", "items": { "$ref": "#/components/schemas/ServiceMetadata" } },
                "min_protocol_version": { "type": "integer" }, "max_protocol_version": { "type": "integer" }, "sdk_version": { "type": "string" },
                "changes": { "type": "array", "description": "perdure: what the registration changes", "items": { "$ref": "#/components/schemas/SchemaChange" } } } },
            "SchemaChange": { "type": "object", "required": ["service", "change", "breaking"], "properties": {
                "service": { "type": "string" }, "handler": { "type": "string" }, "change": { "type": "string" },
                "breaking": { "type": "boolean", "description": "refused without `breaking`" } } },
            "DeploymentResponse": { "type": "object", "required": ["id", "created_at", "services"], "properties": {
                "id": { "type": "string" }, "uri": { "type": "string" }, "protocol_type": { "enum": ["BidiStream", "RequestResponse"] },
                "http_version": { "enum": ["HTTP/1.1", "HTTP/2.0"] }, "additional_headers": { "type": "object" }, "metadata": { "type": "object" },
                "created_at": { "type": "string", "format": "date-time" }, "min_protocol_version": { "type": "integer" }, "max_protocol_version": { "type": "integer" },
                "sdk_version": { "type": "string" },
                "services": { "type": "array", "items": { "type": "object", "properties": { "name": { "type": "string" }, "revision": { "type": "integer" } } } } } },
            "DetailedDeploymentResponse": { "allOf": [ { "$ref": "#/components/schemas/DeploymentResponse" } ], "description": "As DeploymentResponse, with full ServiceMetadata in services" },
            "ListDeploymentsResponse": { "type": "object", "properties": { "deployments": { "type": "array", "items": { "$ref": "#/components/schemas/DeploymentResponse" } } } },
            "ListServicesResponse": { "type": "object", "properties": { "services": { "type": "array", "items": { "$ref": "#/components/schemas/ServiceMetadata" } } } },
            "ListServiceHandlersResponse": { "type": "object", "properties": { "handlers": { "type": "array", "items": { "$ref": "#/components/schemas/HandlerMetadata" } } } },
            "RetryPolicy": { "type": "object", "properties": {
                "initial_interval": { "type": "string" }, "exponentiation_factor": { "type": "number" }, "max_attempts": { "type": ["integer", "null"] },
                "max_interval": { "type": "string" }, "on_max_attempts": { "enum": ["Pause", "Kill"] } } },
            "HandlerMetadata": { "type": "object", "required": ["name", "public", "input_description", "output_description", "retry_policy"], "properties": {
                "name": { "type": "string" }, "ty": { "enum": ["Exclusive", "Shared", "Workflow"] }, "public": { "type": "boolean" },
                "documentation": { "type": "string" }, "metadata": { "type": "object" },
                "input_description": { "type": "string" }, "output_description": { "type": "string" },
                "input_json_schema": {}, "output_json_schema": {}, "retry_policy": { "$ref": "#/components/schemas/RetryPolicy" } } },
            "ServiceMetadata": { "type": "object", "required": ["name", "ty", "handlers", "deployment_id", "revision", "public"], "properties": {
                "name": { "type": "string" }, "ty": { "enum": ["Service", "VirtualObject", "Workflow"] },
                "handlers": { "type": "array", "items": { "$ref": "#/components/schemas/HandlerMetadata" } },
                "deployment_id": { "type": "string" }, "revision": { "type": "integer" }, "public": { "type": "boolean" },
                "idempotency_retention": { "type": "string" }, "workflow_completion_retention": { "type": "string" },
                "journal_retention": { "type": "string" }, "inactivity_timeout": { "type": "string" }, "abort_timeout": { "type": "string" },
                "enable_lazy_state": { "type": "boolean" }, "retry_policy": { "$ref": "#/components/schemas/RetryPolicy" } } }
        } }
    })
}

pub async fn document() -> impl IntoResponse {
    Json(spec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_every_route() {
        let spec = super::spec();
        let paths = spec["paths"].as_object().unwrap();
        for route in [
            "/health",
            "/version",
            "/openapi",
            "/cluster-health",
            "/deployments",
            "/deployments/{deployment}",
            "/services",
            "/services/{service}",
            "/services/{service}/handlers",
            "/services/{service}/promote",
            "/services/{service}/rollback",
            "/services/{service}/ramp",
            "/deployments/{deployment}/pause",
            "/deployments/{deployment}/resume",
            "/deployments/{deployment}/invocations",
            "/deployments/prune",
            "/services/{service}/handlers/{handler}",
            "/subscriptions",
            "/kafka-clusters",
            "/query",
            "/invocations/{invocation_id}",
            "/invocations/{invocation_id}/cancel",
            "/invocations/{invocation_id}/kill",
            "/invocations/{invocation_id}/purge",
            "/invocations/{invocation_id}/purge-journal",
            "/invocations/{invocation_id}/restart-as-new",
            "/invocations/{invocation_id}/pause",
            "/invocations/{invocation_id}/resume",
        ] {
            assert!(paths.contains_key(route), "{route} missing from /openapi");
        }
        // every $ref resolves
        let text = spec.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(spec["components"]["schemas"].get(&name).is_some(), "dangling $ref {name}");
        }
    }
}
