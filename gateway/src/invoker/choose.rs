//! Choosing what an attempt runs against: the deployment, the protocol version and the service
//! revision ([`choose`]), and for a first attempt the pin to record and the settings of the
//! revision it starts on. Pure: a schema snapshot and the attempt in, a [`Chosen`] (or the
//! failure that ends or delays the invocation) out.
//!
//! Owns: the rules that re-validate a first attempt against the current schema (its handler must
//! still be served, as the same kind), and what an attempt on a paused deployment reports
//! ([`Chosen::held`]). Does not own: which Lambda version behind an alias runs
//! (`super::lambda_versions`), nor anything about the request.
//!
//! Call order: the attempt calls [`choose`] first; then [`Chosen::held`] if the deployment is
//! paused, otherwise [`Chosen::timeouts`] for its clock and [`Chosen::pin`] once the deployment
//! answered.

use std::time::Duration;

use super::failure::AttemptFailure;
use crate::engine::action::InvokeAttempt;
use crate::engine::command::Effect;
use crate::engine::records::{PinnedDeployment, Retention, RetryPolicy};
use crate::protocol::manifest::ProtocolMode;
use crate::protocol::{ServiceProtocolVersion, choose_version};
use crate::schema::{Deployment, Endpoint, HandlerSchema, HttpVersion, Schema, ServiceRevision};

/// The deployment, protocol version and service revision an attempt runs against.
#[derive(Debug)]
pub struct Chosen<'s> {
    pub deployment: &'s Deployment,
    pub version: ServiceProtocolVersion,
    pub service: &'s ServiceRevision,
    /// For a first attempt: the pin to record, and the settings of the revision it starts on.
    pub newly_pinned: Option<NewPin>,
}

/// What a first attempt records once it runs (or is held).
#[derive(Clone, Debug, PartialEq)]
pub struct NewPin {
    pub pin: PinnedDeployment,
    pub retry_policy: RetryPolicy,
    pub retention: Retention,
}

/// How long an attempt waits for the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// With nothing to send or receive, how long a bidi stream stays open before the request
    /// side is closed (the SDK then suspends). Zero: the attempt is request/response.
    pub inactivity: Duration,
    /// How long to wait for the response head, and then between messages once the request
    /// side is closed.
    pub abort: Duration,
}

/// The deployment an attempt runs on: the one it is pinned to, or for a first attempt the
/// latest revision of its service (or the deployment it was sent to), re-validated against what
/// the invocation was created for (its handler must still exist, with the same kind).
pub fn choose<'s>(schema: &'s Schema, spec: &InvokeAttempt) -> Result<Chosen<'s>, AttemptFailure> {
    let (service_name, handler_name) = (&spec.target.service, &spec.target.handler);
    let Some(pinned) = &spec.deployment else { return choose_latest(schema, spec) };
    let deployment = schema.deployments.get(&pinned.deployment).ok_or_else(|| {
        AttemptFailure::gone(format!(
            "the deployment {} that {} was pinned to was removed (force) before it completed",
            pinned.deployment,
            spec.target.display()
        ))
    })?;
    let version = ServiceProtocolVersion::from_u32(pinned.protocol_version).ok_or_else(|| {
        AttemptFailure::unrunnable(format!("unsupported pinned protocol version {}", pinned.protocol_version))
    })?;
    let service = deployment.services.iter().find(|s| &s.name == service_name).ok_or_else(|| {
        AttemptFailure::unrunnable(format!(
            "deployment {} does not serve '{service_name}' ({service_name}/{handler_name} is pinned to it)",
            deployment.id
        ))
    })?;
    Ok(Chosen { deployment, version, service, newly_pinned: None })
}

fn choose_latest<'s>(schema: &'s Schema, spec: &InvokeAttempt) -> Result<Chosen<'s>, AttemptFailure> {
    let (service_name, handler_name) = (&spec.target.service, &spec.target.handler);
    let service = match &spec.requested_deployment {
        Some(requested) => {
            if !schema.deployments.contains_key(requested) {
                return Err(AttemptFailure::gone(format!(
                    "the deployment {requested} that {} was sent to (x-perdure-deployment) was removed before it started",
                    spec.target.display()
                )));
            }
            schema.revision_on(requested, service_name).ok_or_else(|| {
                AttemptFailure::not_found(format!("the deployment {requested} does not serve '{service_name}'"))
            })?
        }
        None => schema.route(service_name, spec.target.key.as_deref(), &spec.id).ok_or_else(|| {
            AttemptFailure::not_found(format!("the service '{service_name}' is no longer registered"))
        })?,
    };
    let deployment = schema.deployments.get(&service.deployment_id).ok_or_else(|| {
        AttemptFailure::gone(format!(
            "the latest revision of '{service_name}' is on deployment {}, which is gone",
            service.deployment_id
        ))
    })?;
    let handler = service.handler(handler_name).ok_or_else(|| {
        AttemptFailure::not_found(format!(
            "the handler '{handler_name}' of '{service_name}' is gone: revision {} (deployment {}) does not serve it",
            service.revision, deployment.id
        ))
    })?;
    let kind = service.target(handler, None).handler_kind;
    if kind != spec.target.handler_kind {
        return Err(AttemptFailure::kind_changed(format!(
            "the handler {service_name}/{handler_name} was called as {:?} but revision {} (deployment {}) serves it as {:?}",
            spec.target.handler_kind, service.revision, deployment.id, kind
        )));
    }
    let version =
        choose_version(deployment.min_protocol_version, deployment.max_protocol_version).ok_or_else(|| {
            AttemptFailure::internal(format!(
                "deployment {} speaks protocol versions {}..{}, this server {}..{}",
                deployment.id,
                deployment.min_protocol_version,
                deployment.max_protocol_version,
                crate::protocol::MIN_SERVICE_PROTOCOL_VERSION,
                crate::protocol::MAX_SERVICE_PROTOCOL_VERSION
            ))
        })?;
    let newly_pinned = NewPin {
        pin: PinnedDeployment {
            deployment: deployment.id,
            protocol_version: version.as_u32(),
            executed_version: None,
            revision: service.revision,
        },
        retry_policy: service.retry_policy(handler),
        retention: service.retention(handler),
    };
    Ok(Chosen { deployment, version, service, newly_pinned: Some(newly_pinned) })
}

impl Chosen<'_> {
    /// The handler's schema in the chosen revision (absent only for a pinned attempt whose
    /// revision lost it: the service's settings apply then).
    pub fn handler(&self, spec: &InvokeAttempt) -> Option<&HandlerSchema> {
        self.service.handler(&spec.target.handler)
    }

    /// The attempt's timeouts, from the handler's settings. Only an HTTP deployment serving
    /// bidi streams keeps the request side open (a zero inactivity timeout turns that off).
    pub fn timeouts(&self, spec: &InvokeAttempt) -> Timeouts {
        let handler = self.handler(spec);
        let inactivity = Duration::from_millis(self.service.inactivity_timeout(handler));
        let bidi = matches!(self.deployment.endpoint, Endpoint::Http { .. })
            && self.deployment.protocol_mode == ProtocolMode::BidiStream;
        Timeouts {
            inactivity: if bidi { inactivity } else { Duration::ZERO },
            abort: Duration::from_millis(self.service.abort_timeout(handler).max(1)),
        }
    }

    /// What an attempt on a paused deployment reports: nothing starts there, and the
    /// invocation waits as paused (pinned to it, if this was its first attempt) until the
    /// deployment is resumed.
    pub fn held(self, spec: &InvokeAttempt) -> Vec<Effect> {
        let message = format!(
            "deployment {} is paused: {} waits until it is resumed (POST /deployments/{}/resume)",
            self.deployment.id,
            spec.target.display(),
            self.deployment.id
        );
        let mut effects = pin_effects(self.newly_pinned, None);
        effects.push(Effect::Held { message });
        effects
    }

    /// What a first attempt records once the deployment answered: the pin (with the Lambda
    /// version that ran) and the settings of the revision it starts on. Nothing for a later one.
    pub fn pin(&mut self, executed_version: Option<String>) -> Vec<Effect> {
        pin_effects(self.newly_pinned.take(), executed_version)
    }
}

fn pin_effects(newly_pinned: Option<NewPin>, executed_version: Option<String>) -> Vec<Effect> {
    let Some(NewPin { mut pin, retry_policy, retention }) = newly_pinned else { return Vec::new() };
    pin.executed_version = executed_version;
    vec![Effect::Pinned(pin), Effect::Settings { retry_policy, retention }]
}

/// The `protocol` label of an attempt's metrics and spans.
pub fn protocol_label(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Http { http_version: HttpVersion::Http2, .. } => "http2",
        Endpoint::Http { http_version: HttpVersion::Http11, .. } => "http1",
        Endpoint::Lambda { .. } => "lambda",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::records::HandlerKind;
    use crate::invoker::scripted::{first_attempt, greet, http_deployment, lambda_deployment, schema_of};

    fn pinned_to(schema: &Schema, uri: &str) -> InvokeAttempt {
        let deployment = schema.deployments.values().find(|d| d.endpoint.address() == uri).expect("registered");
        InvokeAttempt {
            deployment: Some(PinnedDeployment {
                deployment: deployment.id,
                protocol_version: 6,
                executed_version: None,
                revision: 1,
            }),
            ..first_attempt(greet(), 1)
        }
    }

    #[test]
    fn a_first_attempt_runs_on_the_latest_revision_and_pins_it_with_its_settings() {
        let schema = schema_of(vec![http_deployment("http://v1/", true), http_deployment("http://v2/", true)]);
        let latest = &schema.services["Greeter"];
        let mut chosen = choose(&schema, &first_attempt(greet(), 1)).unwrap();
        assert_eq!(chosen.deployment.id, latest.deployment_id);
        assert_eq!(chosen.version, ServiceProtocolVersion::V6, "the manifest speaks 5..7: this server's highest");
        let handler = latest.handler("greet").unwrap();
        let pin = PinnedDeployment {
            deployment: latest.deployment_id,
            protocol_version: 6,
            executed_version: Some("9".into()),
            revision: latest.revision,
        };
        assert_eq!(
            chosen.pin(Some("9".into())),
            vec![
                Effect::Pinned(pin),
                Effect::Settings { retry_policy: latest.retry_policy(handler), retention: latest.retention(handler) }
            ]
        );
        assert_eq!(chosen.pin(None), vec![], "recorded once");
    }

    #[test]
    fn a_pinned_attempt_runs_where_it_is_pinned_and_records_nothing() {
        let schema = schema_of(vec![http_deployment("http://v1/", true), http_deployment("http://v2/", true)]);
        let spec = pinned_to(&schema, "http://v1/");
        let mut chosen = choose(&schema, &spec).unwrap();
        assert_eq!(chosen.deployment.endpoint.address(), "http://v1/", "not the latest");
        assert_eq!(chosen.pin(None), vec![]);
    }

    #[test]
    fn what_is_gone_ends_the_invocation_with_its_code_and_a_message_that_names_it() {
        let schema = schema_of(vec![http_deployment("http://v1/", true)]);
        let failure = |spec: &InvokeAttempt| {
            let f = choose(&schema, spec).expect_err("cannot run");
            assert!(!f.is_transient(), "{f:?}");
            (f.info.code, f.info.message)
        };
        let mut removed = pinned_to(&schema, "http://v1/");
        let gone = crate::ids::DeploymentId::generate();
        removed.deployment.as_mut().unwrap().deployment = gone;
        assert_eq!(
            failure(&removed),
            (
                410,
                format!(
                    "the deployment {gone} that Greeter/greet was pinned to was removed (force) before it completed"
                )
            )
        );
        let mut unsupported = pinned_to(&schema, "http://v1/");
        unsupported.deployment.as_mut().unwrap().protocol_version = 4;
        assert_eq!(failure(&unsupported), (500, "unsupported pinned protocol version 4".into()));

        let mut unknown = first_attempt(greet(), 1);
        unknown.target.service = "Gone".into();
        assert_eq!(failure(&unknown), (404, "the service 'Gone' is no longer registered".into()));
        let mut handler_gone = first_attempt(greet(), 1);
        handler_gone.target.handler = "wave".into();
        let d = schema.services["Greeter"].deployment_id;
        assert_eq!(
            failure(&handler_gone),
            (404, format!("the handler 'wave' of 'Greeter' is gone: revision 1 (deployment {d}) does not serve it"))
        );
        let mut other_kind = first_attempt(greet(), 1);
        other_kind.target.handler_kind = HandlerKind::Shared;
        assert_eq!(
            failure(&other_kind),
            (
                409,
                format!(
                    "the handler Greeter/greet was called as Shared but revision 1 (deployment {d}) serves it as Unkeyed"
                )
            )
        );
        let sent = InvokeAttempt { requested_deployment: Some(gone), ..first_attempt(greet(), 1) };
        assert_eq!(
            failure(&sent),
            (
                410,
                format!(
                    "the deployment {gone} that Greeter/greet was sent to (x-perdure-deployment) was removed before it started"
                )
            )
        );
    }

    #[test]
    fn a_paused_deployment_holds_a_first_attempt_pinned_to_it() {
        let mut schema = schema_of(vec![http_deployment("http://v1/", true)]);
        let id = schema.services["Greeter"].deployment_id;
        schema.deployments.get_mut(&id).unwrap().paused = true;
        let effects = choose(&schema, &first_attempt(greet(), 1)).unwrap().held(&first_attempt(greet(), 1));
        assert!(
            matches!(&effects[..], [Effect::Pinned(p), Effect::Settings { .. }, Effect::Held { .. }] if p.deployment == id)
        );
        let Some(Effect::Held { message }) = effects.last() else { unreachable!() };
        assert_eq!(
            message,
            &format!(
                "deployment {id} is paused: Greeter/greet waits until it is resumed (POST /deployments/{id}/resume)"
            )
        );
        let pinned = pinned_to(&schema, "http://v1/");
        assert!(matches!(&choose(&schema, &pinned).unwrap().held(&pinned)[..], [Effect::Held { .. }]));
    }

    #[test]
    fn only_an_http_deployment_serving_bidi_streams_keeps_the_request_open() {
        let spec = first_attempt(greet(), 1);
        let timeouts = |req| choose(&schema_of(vec![req]), &spec).unwrap().timeouts(&spec);
        let bidi = timeouts(http_deployment("http://v1/", true));
        let defaults = crate::schema::SchemaDefaults::default();
        assert_eq!(bidi.inactivity, Duration::from_millis(defaults.inactivity_timeout));
        assert_eq!(bidi.abort, Duration::from_millis(defaults.abort_timeout));
        assert_eq!(timeouts(http_deployment("http://v1/", false)).inactivity, Duration::ZERO);
        let lambda = timeouts(lambda_deployment("arn:aws:lambda:eu-west-1:1:function:f:live", &[]));
        assert_eq!((lambda.inactivity, lambda.abort), (Duration::ZERO, bidi.abort));
    }

    #[test]
    fn metrics_name_the_protocol_of_the_endpoint() {
        let http2 = Endpoint::Http { uri: "http://h/".into(), http_version: HttpVersion::Http2 };
        let http1 = Endpoint::Http { uri: "http://h/".into(), http_version: HttpVersion::Http11 };
        let lambda = Endpoint::Lambda { arn: "arn".into(), assume_role_arn: None };
        assert_eq!([&http2, &http1, &lambda].map(protocol_label), ["http2", "http1", "lambda"]);
    }
}
