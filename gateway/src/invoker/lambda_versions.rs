//! The function versions behind a Lambda alias deployment. An invocation runs on one version for
//! its whole life: a later attempt invokes the version it is pinned to; a first attempt invokes
//! the alias (wherever it points) and pins the version that ran (`X-Amz-Executed-Version`). The
//! first time a version runs behind the alias, it is checked like a new registration (discovery
//! on exactly it, compared with the registered manifest) and the check is recorded in the
//! schema; while the alias points at a version that failed, new invocations are held at the last
//! version that passed (`LambdaVersions::held_at`).
//!
//! Owns: which function (ARN) an attempt invokes ([`function_to_invoke`]), the check of a
//! version newly seen ([`check_version`]) and its record. The decisions are pure functions
//! ([`while_held`], [`verdict`], [`change_to_record`]); the rest asks Lambda (`GetAlias`,
//! discovery) and updates the schema. Does not own: the Invoke itself (the Lambda transport),
//! what the check compares (`schema::check_lambda_version`).
//!
//! Call order: the attempt calls [`function_to_invoke`] before its request; once the function
//! answered, a first attempt through an alias calls [`check_version`] on the version that ran,
//! before anything of the attempt is recorded (a refused version's answer must not count).

use std::time::Duration;

use super::context::AttemptContext;
use super::discovery::discover_lambda;
use super::failure::AttemptFailure;
use super::lambda::FunctionArn;
use crate::schema::{Deployment, LambdaVersionCheck, LambdaVersions, Schema, SchemaChange, check_lambda_version};

/// The function an attempt invokes: the version it is pinned to; for a first attempt through an
/// alias, the version held while the alias points at one that failed its check ([`while_held`]);
/// otherwise the registered ARN.
pub async fn function_to_invoke(
    ctx: &AttemptContext,
    deployment: &Deployment,
    arn: &FunctionArn,
    role: Option<&str>,
    pinned_version: Option<&str>,
) -> String {
    let registered = deployment.endpoint.address();
    match pinned_version {
        Some(v) => arn.with_qualifier(v),
        None if arn.is_alias() => match held_version(ctx, deployment, arn, role).await {
            Some(v) => arn.with_qualifier(&v),
            None => registered.to_owned(),
        },
        None => registered.to_owned(),
    }
}

/// While the alias is held, where new invocations go (`None`: not held, follow the alias).
/// Asks Lambda where the alias points only in that state.
async fn held_version(
    ctx: &AttemptContext,
    deployment: &Deployment,
    arn: &FunctionArn,
    role: Option<&str>,
) -> Option<String> {
    let held = deployment.lambda_versions.held_at.clone()?;
    let now = match ctx.lambda.alias_version(deployment.endpoint.address(), &arn.region, role).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(deployment = %deployment.id, "cannot read where alias {} points: {e}", arn.qualifier);
            None
        }
    };
    match while_held(&deployment.lambda_versions, held, now.as_deref()) {
        WhileHeld::Held(version) => Some(version),
        WhileHeld::Passed(version, check) => {
            record(ctx, deployment, &version, check).await;
            Some(version)
        }
        WhileHeld::Unseen => None,
    }
}

/// Where a first attempt goes while the alias is held at a version.
#[derive(Debug, PartialEq)]
pub enum WhileHeld {
    /// The held version: the alias still points at a version that failed its check, or where it
    /// points cannot be read.
    Held(String),
    /// The alias moved to a version that passed its check: that version; recording its check
    /// again ends the hold.
    Passed(String, LambdaVersionCheck),
    /// The alias moved to a version not seen yet: follow the alias, which runs it, and the
    /// check after the call sees it.
    Unseen,
}

/// Where a first attempt goes while `versions` is held at `held`, given the version the alias
/// points at now (`None`: it could not be read).
pub fn while_held(versions: &LambdaVersions, held: String, alias_now: Option<&str>) -> WhileHeld {
    let Some(now) = alias_now else { return WhileHeld::Held(held) };
    match versions.seen.get(now) {
        Some(check) if !check.compatible => WhileHeld::Held(held),
        Some(check) => WhileHeld::Passed(now.to_owned(), check.clone()),
        None => WhileHeld::Unseen,
    }
}

/// Checks a version seen behind an alias for the first time (discovery on exactly it,
/// compared with the registered manifest) and records what it found; a version seen before has
/// its verdict already. Err: this attempt's answer must not count. `now_ms` dates the check.
pub async fn check_version(
    ctx: &AttemptContext,
    deployment: &Deployment,
    arn: &FunctionArn,
    role: Option<&str>,
    version: &str,
    now_ms: u64,
) -> Result<(), AttemptFailure> {
    if let Some(verdict) = verdict(deployment, arn, version) {
        return verdict;
    }
    let exact = arn.with_qualifier(version);
    let discovered = discover_lambda(
        &ctx.lambda,
        &exact,
        arn,
        role,
        &deployment.additional_headers,
        ctx.identity.as_deref(),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| {
        AttemptFailure::internal(format!("checking Lambda version {version} behind alias '{}': {e}", arn.qualifier))
    })?;
    let check = check_lambda_version(deployment, &discovered.manifest, &ctx.defaults, now_ms);
    if check.compatible {
        tracing::info!(deployment = %deployment.id, "Lambda version {version} behind alias '{}' checked: it matches", arn.qualifier);
    } else {
        tracing::warn!(
            deployment = %deployment.id,
            "Lambda version {version} behind alias '{}' does not match the registered manifest: {}",
            arn.qualifier,
            check.changes.join("; ")
        );
    }
    let result = if check.compatible { Ok(()) } else { Err(refusal(deployment, arn, version, &check)) };
    record(ctx, deployment, version, check).await;
    result
}

/// The verdict on a version already checked: Ok if it passed, its refusal if not; `None` for a
/// version not seen yet.
pub fn verdict(deployment: &Deployment, arn: &FunctionArn, version: &str) -> Option<Result<(), AttemptFailure>> {
    let check = deployment.lambda_versions.seen.get(version)?;
    Some(if check.compatible { Ok(()) } else { Err(refusal(deployment, arn, version, check)) })
}

/// The failure of an attempt that ran on a version that failed its check.
fn refusal(deployment: &Deployment, arn: &FunctionArn, version: &str, check: &LambdaVersionCheck) -> AttemptFailure {
    AttemptFailure::version_refused(format!(
        "Lambda version {version} behind alias '{}' of deployment {} does not match what was registered ({}); \
         new invocations stay on the last version that does until the alias is registered again with breaking=true",
        arn.qualifier,
        deployment.id,
        check.changes.join("; ")
    ))
}

/// Records a version's check in the schema (once: a change that is already there is skipped).
async fn record(ctx: &AttemptContext, deployment: &Deployment, version: &str, check: LambdaVersionCheck) {
    let id = deployment.id;
    let recorded = ctx
        .schema
        .update(|schema| {
            Ok::<_, crate::storage::StorageError>((change_to_record(schema, deployment, version, &check), ()))
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(deployment = %id, "recording the check of Lambda version {version}: {e}");
    }
}

/// The schema change that records `check` of `version`, unless the schema says so already (the
/// version is seen with that verdict, and the hold is as the verdict leaves it) or the
/// deployment is gone.
pub fn change_to_record(
    schema: &Schema,
    deployment: &Deployment,
    version: &str,
    check: &LambdaVersionCheck,
) -> Option<SchemaChange> {
    let d = schema.deployments.get(&deployment.id)?;
    let unchanged = d.lambda_versions.seen.get(version).is_some_and(|c| c.compatible == check.compatible)
        && (d.lambda_versions.held_at.is_none() == check.compatible);
    (!unchanged).then(|| SchemaChange::LambdaVersion {
        deployment: deployment.id,
        version: version.to_owned(),
        check: check.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoker::scripted::{lambda_deployment, schema_of};

    const ALIAS: &str = "arn:aws:lambda:eu-west-1:1:function:greeter:live";

    fn check(compatible: bool) -> LambdaVersionCheck {
        LambdaVersionCheck { compatible, changes: vec!["Greeter: the service is gone".into()], seen_at: 5 }
    }

    fn held_at(versions: &[(&str, bool)], held: &str) -> Schema {
        let mut schema = schema_of(vec![lambda_deployment(ALIAS, versions)]);
        for d in schema.deployments.values_mut() {
            d.lambda_versions.held_at = Some(held.into());
        }
        schema
    }

    #[test]
    fn while_held_new_invocations_stay_until_the_alias_points_at_a_version_that_passed_or_a_new_one() {
        let schema = held_at(&[("1", true), ("2", false), ("3", true)], "1");
        let versions = &schema.deployments.values().next().unwrap().lambda_versions;
        assert_eq!(while_held(versions, "1".into(), None), WhileHeld::Held("1".into()), "cannot tell where it points");
        assert_eq!(while_held(versions, "1".into(), Some("2")), WhileHeld::Held("1".into()), "still at the failed one");
        assert_eq!(
            while_held(versions, "1".into(), Some("3")),
            WhileHeld::Passed("3".into(), versions.seen["3"].clone()),
            "moved to one that passed"
        );
        assert_eq!(while_held(versions, "1".into(), Some("4")), WhileHeld::Unseen, "a new one: its check decides");
    }

    #[test]
    fn a_version_checked_before_keeps_its_verdict_and_a_new_one_has_none() {
        let schema = schema_of(vec![lambda_deployment(ALIAS, &[("1", true), ("2", false)])]);
        let deployment = schema.deployments.values().next().unwrap();
        let arn = FunctionArn::parse(ALIAS).unwrap();
        assert!(matches!(verdict(deployment, &arn, "1"), Some(Ok(()))));
        assert!(verdict(deployment, &arn, "3").is_none());
        let refused = verdict(deployment, &arn, "2").unwrap().unwrap_err();
        assert_eq!(refused.info.code, 409);
        assert!(refused.is_transient(), "the next attempt goes to the version held");
        assert_eq!(
            refused.info.message,
            format!(
                "Lambda version 2 behind alias 'live' of deployment {} does not match what was registered \
                 (Greeter: the service is gone); new invocations stay on the last version that does until the \
                 alias is registered again with breaking=true",
                deployment.id
            )
        );
    }

    #[test]
    fn a_check_is_recorded_once_and_a_passing_version_ends_the_hold() {
        let free = schema_of(vec![lambda_deployment(ALIAS, &[("1", true)])]);
        let deployment = free.deployments.values().next().unwrap().clone();
        assert!(change_to_record(&free, &deployment, "1", &check(true)).is_none(), "already recorded");
        assert!(matches!(
            change_to_record(&free, &deployment, "2", &check(false)),
            Some(SchemaChange::LambdaVersion { version, check, .. }) if version == "2" && !check.compatible
        ));
        let held = held_at(&[("1", true), ("2", false)], "1");
        let deployment = held.deployments.values().next().unwrap().clone();
        assert!(change_to_record(&held, &deployment, "2", &check(false)).is_none(), "held for it already");
        assert!(
            change_to_record(&held, &deployment, "1", &check(true)).is_some(),
            "seen, but recording it again ends the hold"
        );
        let mut gone = held.clone();
        gone.deployments.clear();
        assert!(change_to_record(&gone, &deployment, "3", &check(true)).is_none(), "the deployment is gone");
    }
}
