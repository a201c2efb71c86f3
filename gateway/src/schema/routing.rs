//! Where a service's new invocations go, beyond "the latest registration": promote any
//! registered deployment's revision (an unpromoted newer one, or an earlier one), roll back
//! to the one before, or ramp a share of new invocations to another deployment. Each move is
//! checked like a registration (the target revision against the current one), and recorded
//! as a [`SchemaChange`] through the schema log.

use std::collections::BTreeMap;

use super::SchemaChange;
use super::compat::{self, Change};
use super::model::{Ramp, Schema, ServiceRevision};
use super::register::{RegistrationError, refuse_breaking};
use crate::ids::DeploymentId;

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("The requested service '{0}' does not exist")]
    UnknownService(String),
    #[error("The requested deployment '{0}' does not exist")]
    UnknownDeployment(DeploymentId),
    #[error("deployment {deployment} does not serve the service '{service}'")]
    NotServed { deployment: DeploymentId, service: String },
    #[error("{0}")]
    Invalid(String),
    #[error("percent must be between 0 and 100, not {0}")]
    BadPercent(u32),
    #[error(transparent)]
    Refused(#[from] RegistrationError),
}

/// What a move did (or, in a dry run, would do).
#[derive(Debug)]
pub struct Routed {
    /// The service's latest revision afterwards.
    pub service: ServiceRevision,
    pub ramp: Option<Ramp>,
    pub changes: Vec<Change>,
}

/// The revision `deployment` serves of `service`, as it would be if it became the latest: the
/// next revision number, and the operator's visibility setting carried over.
fn candidate(schema: &Schema, service: &str, deployment: DeploymentId) -> Result<ServiceRevision, RoutingError> {
    if !schema.deployments.contains_key(&deployment) {
        return Err(RoutingError::UnknownDeployment(deployment));
    }
    let on = schema
        .revision_on(&deployment, service)
        .ok_or_else(|| RoutingError::NotServed { deployment, service: service.to_owned() })?;
    let mut next = on.clone();
    next.revision = schema.next_revision(service);
    if let Some(current) = schema.services.get(service) {
        next.public = current.public;
    }
    Ok(next)
}

/// The compatibility changes of moving `service` from its latest revision to `next`; refused
/// (409) when one breaks and `breaking` is not set.
fn checked(
    schema: &Schema,
    next: &ServiceRevision,
    breaking: bool,
    pending: &BTreeMap<String, u64>,
) -> Result<Vec<Change>, RoutingError> {
    let changes = compat::changes(schema.services.get(&next.name), next, pending);
    if breaking { Ok(changes) } else { Ok(refuse_breaking(changes)?) }
}

/// Points `service`'s new invocations at `deployment` (which must serve it). Nothing changes
/// when it is there already and no ramp is running.
pub fn promote(
    schema: &Schema,
    service: &str,
    deployment: DeploymentId,
    breaking: bool,
    pending: &BTreeMap<String, u64>,
) -> Result<(Option<SchemaChange>, Routed), RoutingError> {
    if let Some(current) = schema.services.get(service)
        && current.deployment_id == deployment
        && !schema.ramps.contains_key(service)
    {
        return Ok((None, Routed { service: current.clone(), ramp: None, changes: Vec::new() }));
    }
    let next = candidate(schema, service, deployment)?;
    let changes = checked(schema, &next, breaking, pending)?;
    let change = SchemaChange::Route { service: Box::new(next.clone()) };
    Ok((Some(change), Routed { service: next, ramp: None, changes }))
}

/// The deployment a rollback of `service` goes to: the newest earlier latest that is still
/// registered and still serves it.
pub fn previous(schema: &Schema, service: &str) -> Result<DeploymentId, RoutingError> {
    let current = schema.services.get(service).ok_or_else(|| RoutingError::UnknownService(service.to_owned()))?;
    schema
        .history
        .get(service)
        .into_iter()
        .flatten()
        .rev()
        .find(|d| **d != current.deployment_id && schema.revision_on(d, service).is_some())
        .copied()
        .ok_or_else(|| {
            RoutingError::Invalid(format!(
                "'{service}' has no earlier deployment to roll back to (its revision {} on {} is the only one registered); \
                 name one with 'deployment'",
                current.revision, current.deployment_id
            ))
        })
}

/// Sends `percent` of `service`'s new invocations to `deployment`: 0 ends the ramp, 100
/// promotes it.
pub fn ramp(
    schema: &Schema,
    service: &str,
    deployment: DeploymentId,
    percent: u32,
    breaking: bool,
    pending: &BTreeMap<String, u64>,
) -> Result<(Option<SchemaChange>, Routed), RoutingError> {
    let current = schema.services.get(service).ok_or_else(|| RoutingError::UnknownService(service.to_owned()))?;
    if percent > 100 {
        return Err(RoutingError::BadPercent(percent));
    }
    if percent == 100 {
        return promote(schema, service, deployment, breaking, pending);
    }
    let next = candidate(schema, service, deployment)?;
    if current.deployment_id == deployment && percent > 0 {
        return Err(RoutingError::Invalid(format!(
            "deployment {deployment} serves the latest revision of '{service}' already: ramp another deployment"
        )));
    }
    let existing = schema.ramps.get(service);
    if percent == 0 {
        let change = existing.map(|_| SchemaChange::Ramp { service: service.to_owned(), ramp: None });
        return Ok((change, Routed { service: current.clone(), ramp: None, changes: Vec::new() }));
    }
    let ramp = Ramp { deployment, percent: percent as u8 };
    if existing == Some(&ramp) {
        return Ok((None, Routed { service: current.clone(), ramp: Some(ramp), changes: Vec::new() }));
    }
    let mut changes = checked(schema, &next, breaking, pending)?;
    // The revision number is taken when it is promoted; a ramp only shares the traffic.
    if let Some(first) = changes.first_mut()
        && first.handler.is_none()
        && first.change.starts_with("revision ")
    {
        first.change = format!("{percent}% of new invocations go to deployment {deployment}");
    }
    let change = SchemaChange::Ramp { service: service.to_owned(), ramp: Some(ramp.clone()) };
    Ok((Some(change), Routed { service: current.clone(), ramp: Some(ramp), changes }))
}
