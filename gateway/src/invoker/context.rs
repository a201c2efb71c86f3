//! What every attempt shares ([`AttemptContext`]: transports, the schema, storage, the
//! partitions' handle, signing) and the invoker's settings ([`InvokerConfig`]). Built once by
//! the server (or a test, around a scripted transport) and handed to [`super::Invoker::run`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::identity::RequestIdentity;
use super::lambda::LambdaClients;
use super::transport::Transports;
use crate::schema::SchemaRegistry;
use crate::storage::Storage;

/// Settings of the invoker.
#[derive(Clone, Debug)]
pub struct InvokerConfig {
    /// Largest protocol message accepted from a deployment.
    pub message_size_limit: u32,
    /// Headers added to every request to deployments.
    pub additional_headers: BTreeMap<String, String>,
    /// Most state (keys and values, bytes) sent eagerly with an attempt; 0 = always lazy.
    pub eager_state_size_limit: usize,
    /// Most attempts running at once; the others wait their turn, in order.
    pub concurrent_invocations_limit: usize,
}

impl Default for InvokerConfig {
    fn default() -> Self {
        Self {
            message_size_limit: crate::protocol::DEFAULT_MAX_MESSAGE_SIZE,
            additional_headers: BTreeMap::new(),
            eager_state_size_limit: 32 << 20,
            concurrent_invocations_limit: 1000,
        }
    }
}

/// What every attempt shares.
pub struct AttemptContext {
    /// How attempts reach deployments: the network, or a test's scripted transport.
    pub transports: Transports,
    /// Lambda's control plane, for the versions behind an alias (`GetAlias`, discovery).
    pub lambda: Arc<LambdaClients>,
    pub schema: SchemaRegistry,
    pub storage: Storage,
    pub partitions: crate::partition::Handle,
    pub config: InvokerConfig,
    /// For checking Lambda versions behind an alias like a registration.
    pub defaults: crate::schema::SchemaDefaults,
    /// Signs every request to deployments, when a key is configured.
    pub identity: Option<Arc<RequestIdentity>>,
}
