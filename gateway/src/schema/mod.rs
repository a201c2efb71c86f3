//! Schema: registered deployments, the services they carry and their revisions.
//!
//! A deployment is immutable. Registering one that carries already known services creates
//! new service *revisions*; new invocations go to the latest revision, while running ones
//! stay pinned to the deployment they started on (the engine records the pin). The schema
//! is small and changes rarely: it is kept in memory as one immutable snapshot, swapped on
//! every change. Every change is first appended to the schema's own log ([`SchemaChange`]s,
//! behind the same `Log` trait as partitions, so a replicated log can take its place), then
//! applied and stored with the LSN it reached; a start replays what the stored schema misses.
//!
//! Where new invocations go is routing: the latest revision of each service, unless a ramp
//! sends a share of them (by key for objects and workflows) to another deployment; a
//! registration can skip promotion, and promote / rollback / ramp move a service between
//! registered deployments later (`routing`), each checked like a registration (`compat`)
//! and recorded as a change. `history` remembers where each service was routed, for
//! rollback and for telling a drained deployment from one never used.
//!
//! Owns: the data model, registration and routing rules (`register`, `routing`, `compat`),
//! lookups for ingress and the invoker. Does not own: discovery I/O (`invoker::discovery`),
//! HTTP (`admin/`), or the drain counters (kept by the partitions with the invocations).

mod compat;
mod drain;
mod model;
mod register;
mod routing;

pub use compat::Change;
pub use drain::{DrainStatus, prunable};
pub use model::*;
pub use register::{
    InFlight, LISTED, RegisterOutcome, RegisterRequest, RegistrationError, check_lambda_version, register,
};
pub use routing::{Routed, RoutingError, previous as rollback_target, promote, ramp};

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::DeploymentId;
use crate::storage::log::{Log, Lsn, RocksLog};
use crate::storage::{Storage, StorageError};

/// The schema as of [`APPLIED_KEY`]'s LSN of the schema log (JSON).
const SCHEMA_KEY: &[u8] = b"schema";
/// The last schema log entry [`SCHEMA_KEY`] contains (8 bytes, big endian).
const APPLIED_KEY: &[u8] = b"schema-applied";

/// One change to the schema, with everything it needs resolved (ids, revisions, times), so
/// that applying the same changes in order rebuilds the same schema: what the schema log
/// holds, and what a replica would replay.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SchemaChange {
    /// A deployment was registered, or overwritten in place; the services named in `latest`
    /// now have their newest revision on it, and those in `dropped` (which the overwritten
    /// manifest had and the new one lacks) are gone where it served their latest revision.
    PutDeployment {
        deployment: Box<Deployment>,
        latest: Vec<String>,
        #[serde(default)]
        dropped: Vec<String>,
    },
    /// A service's settings changed (`PATCH /services`): its latest revision as it is now.
    PutService { service: Box<ServiceRevision> },
    /// A deployment was removed, and with it the services whose latest revision it served.
    RemoveDeployment { id: DeploymentId, services: Vec<String> },
    /// A deployment's address or headers changed (`PATCH /deployments`); its code did not.
    UpdateDeployment { deployment: Box<Deployment> },
    /// A service's new invocations go to another registered deployment (promote, rollback):
    /// its revision there, renumbered as the service's newest.
    Route { service: Box<ServiceRevision> },
    /// A share of a service's new invocations goes to another deployment, or (None) none.
    Ramp { service: String, ramp: Option<Ramp> },
    /// No attempt starts on a deployment (paused), or they may again.
    PauseDeployment { id: DeploymentId, paused: bool },
    /// A function version ran behind a Lambda alias for the first time and was checked (or
    /// the alias came back to one that passed). A version that failed holds new invocations
    /// at the newest version that passed; one that passed lifts the hold.
    LambdaVersion { deployment: DeploymentId, version: String, check: LambdaVersionCheck },
}

impl Schema {
    /// Applies one change.
    pub fn apply(&mut self, change: SchemaChange) {
        match change {
            SchemaChange::PutDeployment { deployment, latest, dropped } => {
                for name in dropped {
                    if self.services.get(&name).is_some_and(|s| s.deployment_id == deployment.id) {
                        self.services.remove(&name);
                    }
                }
                for name in &latest {
                    if let Some(s) = deployment.services.iter().find(|s| &s.name == name) {
                        self.services.insert(name.clone(), s.clone());
                        self.routed(name, deployment.id);
                    }
                }
                self.deployments.insert(deployment.id, *deployment);
            }
            SchemaChange::Route { service } => {
                if let Some(d) = self.deployments.get_mut(&service.deployment_id)
                    && let Some(s) = d.services.iter_mut().find(|s| s.name == service.name)
                {
                    s.revision = service.revision;
                }
                self.routed(&service.name, service.deployment_id);
                self.services.insert(service.name.clone(), *service);
            }
            SchemaChange::PauseDeployment { id, paused } => {
                if let Some(d) = self.deployments.get_mut(&id) {
                    d.paused = paused;
                }
            }
            SchemaChange::Ramp { service, ramp } => match ramp {
                Some(r) => {
                    self.ramps.insert(service, r);
                }
                None => {
                    self.ramps.remove(&service);
                }
            },
            SchemaChange::PutService { service } => {
                if let Some(d) = self.deployments.get_mut(&service.deployment_id)
                    && let Some(s) = d.services.iter_mut().find(|s| s.name == service.name)
                {
                    *s = (*service).clone();
                }
                self.services.insert(service.name.clone(), *service);
            }
            SchemaChange::RemoveDeployment { id, services } => {
                self.deployments.remove(&id);
                self.ramps.retain(|_, r| r.deployment != id);
                for h in self.history.values_mut() {
                    h.retain(|d| d != &id);
                }
                for name in services {
                    if self.services.get(&name).is_some_and(|s| s.deployment_id == id) {
                        self.services.remove(&name);
                    }
                }
            }
            SchemaChange::LambdaVersion { deployment, version, check } => {
                if let Some(d) = self.deployments.get_mut(&deployment) {
                    let versions = &mut d.lambda_versions;
                    let compatible = check.compatible;
                    versions.seen.insert(version, check);
                    versions.held_at = if compatible {
                        None
                    } else {
                        versions
                            .seen
                            .iter()
                            .filter(|(_, c)| c.compatible)
                            .max_by_key(|(v, c)| (v.parse::<u64>().unwrap_or(0), c.seen_at))
                            .map(|(v, _)| v.clone())
                    };
                }
            }
            SchemaChange::UpdateDeployment { deployment } => {
                if let Some(d) = self.deployments.get_mut(&deployment.id) {
                    *d = *deployment;
                }
            }
        }
    }

    /// `service`'s new invocations now go to `deployment`: remember it, end any ramp.
    fn routed(&mut self, service: &str, deployment: DeploymentId) {
        let h = self.history.entry(service.to_owned()).or_default();
        h.retain(|d| d != &deployment);
        h.push(deployment);
        self.ramps.remove(service);
    }

    /// The services whose latest revision deployment `id` serves.
    pub fn latest_on(&self, id: &DeploymentId) -> Vec<String> {
        self.services.values().filter(|s| &s.deployment_id == id).map(|s| s.name.clone()).collect()
    }
}

/// The shared, swappable schema. Cheap to clone.
#[derive(Clone)]
pub struct SchemaRegistry {
    current: Arc<RwLock<Arc<Schema>>>,
    /// Serializes changes, so each one builds on the latest schema; holds the log's tail.
    changes: Arc<tokio::sync::Mutex<Lsn>>,
    log: RocksLog,
    storage: Storage,
}

impl SchemaRegistry {
    /// Loads the stored schema and applies the log entries it does not contain yet.
    pub async fn load(storage: Storage, log: RocksLog) -> Result<Self, StorageError> {
        let mut schema = match storage.get_meta(SCHEMA_KEY)? {
            Some(raw) => decode_schema(&raw)?,
            None => Schema::default(),
        };
        let mut applied = match storage.get_meta(APPLIED_KEY)? {
            Some(raw) => u64::from_be_bytes(raw.as_slice().try_into().map_err(|_| StorageError::Corrupt {
                table: "meta",
                reason: "schema-applied is not 8 bytes".into(),
            })?),
            None => 0,
        };
        let replayed = applied;
        loop {
            let entries = log.read(applied, 256).await?;
            let Some(last) = entries.last().map(|e| e.lsn) else { break };
            for entry in entries {
                schema.apply(decode_change(&entry.batch)?);
            }
            applied = last;
        }
        if applied != replayed {
            persist(&storage, &schema, applied)?;
        }
        let tail = log.tail().await?;
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(schema))),
            changes: Arc::new(tokio::sync::Mutex::new(tail)),
            log,
            storage,
        })
    }

    /// The current schema.
    pub fn snapshot(&self) -> Arc<Schema> {
        self.current.read().expect("schema lock is never poisoned: writers do not panic").clone()
    }

    /// Applies a change computed from the current schema: it is appended to the schema log
    /// (durable) before anyone sees it, then stored with the schema.
    pub async fn update<T, E: From<StorageError>>(
        &self,
        change: impl FnOnce(&Schema) -> Result<(Option<SchemaChange>, T), E>,
    ) -> Result<T, E> {
        let mut tail = self.changes.lock().await;
        let current = self.snapshot();
        let (change, answer) = change(&current)?;
        if let Some(change) = change {
            let entry = serde_json::to_vec(&change).expect("schema changes serialize to JSON");
            let lsn = self.log.append(*tail, 0, Bytes::from(entry)).await.map_err(StorageError::from)?;
            *tail = lsn;
            let mut next = (*current).clone();
            next.apply(change);
            persist(&self.storage, &next, lsn)?;
            *self.current.write().expect("schema lock is never poisoned") = Arc::new(next);
        }
        Ok(answer)
    }

    pub fn deployment(&self, id: &DeploymentId) -> Option<Deployment> {
        self.snapshot().deployments.get(id).cloned()
    }
}

/// The stored schema. One written before routing history was kept (perdure 0.1 before
/// promotion existed) gets it rebuilt: every registration was promoted then, so each
/// deployment of a service was its latest once, in the order they were created.
fn decode_schema(raw: &[u8]) -> Result<Schema, StorageError> {
    let corrupt = |e: serde_json::Error| StorageError::Corrupt { table: "meta", reason: format!("schema: {e}") };
    #[derive(Deserialize)]
    struct Probe {
        history: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(raw).map_err(corrupt)?;
    let mut schema: Schema = serde_json::from_slice(raw).map_err(corrupt)?;
    if probe.history.is_none() {
        let mut by_age: Vec<&Deployment> = schema.deployments.values().collect();
        by_age.sort_by_key(|d| d.created_at);
        let mut history: std::collections::BTreeMap<String, Vec<DeploymentId>> = Default::default();
        for d in by_age {
            for s in &d.services {
                history.entry(s.name.clone()).or_default().push(d.id);
            }
        }
        for (name, latest) in &schema.services {
            let h = history.entry(name.clone()).or_default();
            h.retain(|d| d != &latest.deployment_id);
            h.push(latest.deployment_id);
        }
        schema.history = history;
    }
    Ok(schema)
}

fn decode_change(raw: &[u8]) -> Result<SchemaChange, StorageError> {
    serde_json::from_slice(raw).map_err(|e| StorageError::Corrupt { table: "schema log", reason: e.to_string() })
}

/// Stores the schema with the LSN of the last change it contains.
fn persist(storage: &Storage, schema: &Schema, applied: Lsn) -> Result<(), StorageError> {
    let raw = serde_json::to_vec(schema).expect("the schema serializes to JSON");
    storage.put_meta(&[(SCHEMA_KEY, &raw), (APPLIED_KEY, &applied.to_be_bytes())])
}

#[cfg(test)]
pub(crate) mod tests;
