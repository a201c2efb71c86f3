//! Drain status: whether a deployment is still needed, and the rules that follow from it
//! (who may remove it, what pruning removes). Admin, SQL, the node port and the server's
//! auto-prune all ask here.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Deployment, Schema};
use crate::engine::records::DrainCounts;
use crate::ids::DeploymentId;

/// Where a deployment stands, from the routing and from the invocations pinned to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainStatus {
    /// New invocations of some service go to it (its latest revision, or a ramp).
    Active,
    /// Not any more, but not-completed invocations are still pinned to it.
    Draining,
    /// Neither, and it was routed to once: it can go, and pruning removes it.
    Drained,
    /// Registered without promotion and never routed to, nothing pinned: it can go, but
    /// pruning leaves it (it may be about to be promoted).
    Inactive,
}

impl DrainStatus {
    pub const ALL: [DrainStatus; 4] =
        [DrainStatus::Active, DrainStatus::Draining, DrainStatus::Drained, DrainStatus::Inactive];

    /// The status of deployment `id` with `pinned` not-completed invocations pinned to it.
    pub fn of(schema: &Schema, id: &DeploymentId, pinned: u64) -> Self {
        if schema.is_routed_to(id) {
            DrainStatus::Active
        } else if pinned > 0 {
            DrainStatus::Draining
        } else if schema.ever_routed(id) {
            DrainStatus::Drained
        } else {
            DrainStatus::Inactive
        }
    }

    /// As the admin API, SQL and metrics show it.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainStatus::Active => "active",
            DrainStatus::Draining => "draining",
            DrainStatus::Drained => "drained",
            DrainStatus::Inactive => "inactive",
        }
    }

    /// Nothing routes to it and nothing is pinned to it: removing it (without `force`) breaks
    /// nothing.
    pub fn can_be_removed(self) -> bool {
        matches!(self, DrainStatus::Drained | DrainStatus::Inactive)
    }
}

impl std::fmt::Display for DrainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What pruning removes when it keeps the newest `keep` drained deployments: the older
/// drained ones, newest first. The rule of `POST /deployments/prune`, `perdure dp prune` and
/// the server's auto-prune; active, draining and inactive deployments are never pruned.
pub fn prunable<'s>(
    schema: &'s Schema,
    counts: &BTreeMap<DeploymentId, DrainCounts>,
    keep: usize,
) -> Vec<&'s Deployment> {
    let pinned = |id: &DeploymentId| counts.get(id).map_or(0, DrainCounts::total);
    let mut drained: Vec<&Deployment> = schema
        .deployments
        .values()
        .filter(|d| DrainStatus::of(schema, &d.id, pinned(&d.id)) == DrainStatus::Drained)
        .collect();
    drained.sort_by_key(|d| std::cmp::Reverse(d.created_at));
    drained.into_iter().skip(keep).collect()
}
