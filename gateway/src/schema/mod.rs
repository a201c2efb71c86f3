//! Schema: registered deployments, the services they carry and their revisions.
//!
//! A deployment is immutable. Registering one that carries already known services creates
//! new service *revisions*; new invocations go to the latest revision, while running ones
//! stay pinned to the deployment they started on (the engine records the pin). The schema
//! is small and changes rarely: it is kept in memory as one immutable snapshot, swapped on
//! every change and persisted durably in the `meta` table.
//!
//! Owns: the data model, registration rules (`register`), lookups for ingress and the
//! invoker. Does not own: discovery I/O (`invoker::discovery`) or HTTP (`admin/`).

mod model;
mod register;

pub use model::*;
pub use register::{RegisterOutcome, RegisterRequest, RegistrationError, register};

use std::sync::{Arc, RwLock};

use crate::ids::DeploymentId;
use crate::storage::{Storage, StorageError};

const SCHEMA_KEY: &[u8] = b"schema";

/// The shared, swappable schema. Cheap to clone.
#[derive(Clone)]
pub struct SchemaRegistry {
    current: Arc<RwLock<Arc<Schema>>>,
    /// Serializes changes (registration) so each one builds on the latest schema.
    changes: Arc<tokio::sync::Mutex<()>>,
    storage: Storage,
}

impl SchemaRegistry {
    pub fn load(storage: Storage) -> Result<Self, StorageError> {
        let schema = match storage.get_meta(SCHEMA_KEY)? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| StorageError::Corrupt { table: "meta", reason: format!("schema: {e}") })?,
            None => Schema::default(),
        };
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(schema))),
            changes: Arc::new(tokio::sync::Mutex::new(())),
            storage,
        })
    }

    /// The current schema.
    pub fn snapshot(&self) -> Arc<Schema> {
        self.current.read().expect("schema lock is never poisoned: writers do not panic").clone()
    }

    /// Applies a change computed from the current schema, persisting it before anyone sees it.
    pub async fn update<T, E: From<StorageError>>(
        &self,
        change: impl FnOnce(&Schema) -> Result<(Option<Schema>, T), E>,
    ) -> Result<T, E> {
        let _guard = self.changes.lock().await;
        let current = self.snapshot();
        let (next, answer) = change(&current)?;
        if let Some(next) = next {
            let raw = serde_json::to_vec(&next).expect("schema serializes to JSON");
            self.storage.put_meta_sync(SCHEMA_KEY, &raw)?;
            *self.current.write().expect("schema lock is never poisoned") = Arc::new(next);
        }
        Ok(answer)
    }

    pub fn deployment(&self, id: &DeploymentId) -> Option<Deployment> {
        self.snapshot().deployments.get(id).cloned()
    }
}
