//! Configuration, layered: built-in defaults < `perdure.toml` (or `--config FILE`) <
//! `PERDURE_*` environment variables (`__` between nesting levels, `_` for `-`, e.g.
//! `PERDURE_INGRESS__BIND_ADDRESS=127.0.0.1:18080`) < command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::durations::serde_friendly;
use crate::engine::records::OnMaxAttempts;
use crate::schema::{RetrySettings, SchemaDefaults};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Where RocksDB keeps everything.
    pub data_dir: PathBuf,
    /// Number of partitions. Fixed when the data directory is created.
    pub partitions: u32,
    pub ingress: IngressConfig,
    pub admin: AdminConfig,
    pub pg: PgConfig,
    pub node: NodeConfig,
    pub invoker: InvokerSettings,
    pub retry_policy: RetryPolicyConfig,
    /// How long results of idempotent (and all ingress) invocations are kept.
    #[serde(with = "serde_friendly")]
    pub default_idempotency_retention: Duration,
    /// How long journals of completed invocations are kept.
    #[serde(with = "serde_friendly")]
    pub default_journal_retention: Duration,
    #[serde(with = "serde_friendly")]
    pub default_workflow_completion_retention: Duration,
    pub storage: StorageConfig,
    pub deployments: DeploymentsConfig,
    pub lambda: LambdaConfig,
    pub request_identity: RequestIdentityConfig,
    /// OpenTelemetry traces (OTLP); off without an endpoint.
    pub tracing: TracingConfig,
    /// `tracing` filter, e.g. `info` or `perdure=debug`.
    pub log_filter: String,
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    /// Text for people.
    Pretty,
    /// One JSON object a line, with the invocation and attempt of the line where it has one.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log-format must be \"pretty\" or \"json\", not {other:?}")),
        }
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IngressConfig {
    pub bind_address: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub request_size_limit: u64,
    /// The URL `/version` advertises; defaults to `http://<bind-address>/`.
    pub advertised_address: Option<String>,
    /// A path prefix every ingress request carries and perdure drops, e.g. `/prod` behind an
    /// API Gateway stage that forwards its prefix; requests without it get 404.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Requests from the ingress one partition holds before it sheds more (503 with
    /// `Retry-After`); in-flight invocations and the admin API do not count.
    pub queue_per_partition: usize,
    /// Ingress requests served at once (calls waiting for their result included); beyond
    /// it, 503 with `Retry-After` instead of buffering.
    pub concurrency_limit: usize,
}

impl IngressConfig {
    /// `path-prefix` without its trailing `/`; `None` for none or `/`.
    pub fn normalized_path_prefix(&self) -> Option<String> {
        let p = self.path_prefix.as_deref()?.trim_end_matches('/');
        (!p.is_empty()).then(|| p.to_owned())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AdminConfig {
    pub bind_address: SocketAddr,
    /// A `POST /query` statement (or a PostgreSQL one) running longer than this is stopped;
    /// from 10ms to [`MAX_QUERY_TIMEOUT`].
    #[serde(with = "serde_friendly")]
    pub query_timeout: Duration,
    /// Secrets clients of the admin API (`Authorization: Bearer`) and the PostgreSQL port (the
    /// password) must give, when set (several, so one can be rotated out); required when either
    /// binds a non-loopback address. A list, or one string with commas
    /// (`PERDURE_ADMIN__AUTH_TOKENS=a,b`).
    #[serde(deserialize_with = "tokens")]
    pub auth_tokens: Vec<String>,
}

/// The longest `admin.query-timeout`: a statement is an operator's question, not a batch job,
/// and a bounded timeout keeps every deadline computed from it representable.
pub const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The PostgreSQL wire protocol (psql) over the SQL tables.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PgConfig {
    pub enabled: bool,
    pub bind_address: SocketAddr,
}

/// The node port: Prometheus `/metrics`, `/health`, and gRPC (`grpc.health.v1`, reflection,
/// `perdure.node.v1.NodeStatus`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeConfig {
    pub enabled: bool,
    pub bind_address: SocketAddr,
}

/// Where and how traces are exported. The standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_PROTOCOL` and `OTEL_SERVICE_NAME`
/// apply where these are not set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TracingConfig {
    /// The collector: `http://host:4317` for gRPC, `http://host:4318` (or the full
    /// `…/v1/traces`) for HTTP. No endpoint, no traces.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub protocol: TracingProtocol,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Share of new traces recorded (0 to 1); a request whose `traceparent` is sampled (or not)
    /// keeps its caller's decision.
    pub sample_ratio: f64,
    /// Spans are sent at least this often (and whenever 512 are waiting).
    #[serde(with = "serde_friendly")]
    pub export_interval: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TracingProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl TracingProtocol {
    pub fn name(self) -> &'static str {
        match self {
            TracingProtocol::Grpc => "grpc",
            TracingProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

fn tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tokens {
        List(Vec<String>),
        Joined(String),
    }
    Ok(match Tokens::deserialize(d)? {
        Tokens::List(l) => l,
        Tokens::Joined(s) => s.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
    })
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InvokerSettings {
    /// Close an idle bidi stream (the SDK suspends) after this long.
    #[serde(with = "serde_friendly")]
    pub inactivity_timeout: Duration,
    /// Give up on an attempt that sends nothing for this long after its stream closed.
    #[serde(with = "serde_friendly")]
    pub abort_timeout: Duration,
    #[serde(with = "serde_friendly")]
    pub connect_timeout: Duration,
    /// Largest protocol message accepted from deployments, in bytes.
    pub message_size_limit: u32,
    /// Most state (bytes) sent eagerly to an attempt of an object or workflow; 0 = lazy.
    pub eager_state_size_limit: u64,
    /// Most attempts running at once; the others wait in order.
    pub concurrent_invocations_limit: u32,
    /// Extra CA certificates (PEM) trusted for `https://` deployments, besides the system's.
    #[serde(default)]
    pub trusted_ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetryPolicyConfig {
    #[serde(with = "serde_friendly")]
    pub initial_interval: Duration,
    pub exponentiation_factor: f64,
    /// Attempts before `on-max-attempts` applies; 0 means unlimited.
    pub max_attempts: u32,
    #[serde(with = "serde_friendly")]
    pub max_interval: Duration,
    /// `pause` or `kill`.
    #[serde(with = "on_max_attempts")]
    pub on_max_attempts: OnMaxAttempts,
}

/// `retry-policy.on-max-attempts` as written in the configuration: `pause` or `kill`.
mod on_max_attempts {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::engine::records::OnMaxAttempts;

    pub fn serialize<S: Serializer>(o: &OnMaxAttempts, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match o {
            OnMaxAttempts::Pause => "pause",
            OnMaxAttempts::Kill => "kill",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OnMaxAttempts, D::Error> {
        match String::deserialize(d)?.as_str() {
            "pause" => Ok(OnMaxAttempts::Pause),
            "kill" => Ok(OnMaxAttempts::Kill),
            other => Err(D::Error::custom(format!(
                "retry-policy.on-max-attempts must be \"pause\" or \"kill\", not {other:?}"
            ))),
        }
    }
}

/// What the server does with deployments by itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DeploymentsConfig {
    /// Remove drained deployments (nothing routes new invocations to them and nothing is
    /// pinned to them) by themselves, as `perdure dp prune` does. Inactive ones (registered
    /// without promotion, never routed to) stay.
    pub auto_prune: bool,
    /// The newest drained deployments auto-prune keeps (for a quick rollback).
    pub keep_drained: u32,
    /// How often auto-prune looks.
    #[serde(with = "serde_friendly")]
    pub prune_interval: Duration,
}

/// Calling Lambda deployments. Credentials, endpoints and profiles come from the standard
/// AWS configuration (environment, `~/.aws`, web identity, container roles).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LambdaConfig {
    /// Accept `$LATEST` ARNs (for development: their code changes under running invocations).
    pub allow_latest: bool,
    /// `ExternalId` sent when assuming a deployment's `assume_role_arn`.
    #[serde(default)]
    pub assume_role_external_id: Option<String>,
    /// Request bodies at least this large (bytes) are zstd-compressed for deployments whose
    /// manifest allows it.
    pub request_compression_threshold: u64,
}

/// Signing requests to deployments, so SDKs configured with the public key accept only them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RequestIdentityConfig {
    /// An Ed25519 private key in PKCS#8 PEM (`perdure keygen --out FILE`); none = unsigned.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// How long each token is valid either side of now.
    #[serde(with = "serde_friendly")]
    pub expiration: Duration,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StorageConfig {
    /// Memtable budget in bytes.
    pub memtable_size: u64,
    /// Block cache in bytes.
    pub cache_size: u64,
    /// Flush state to disk and trim the log this often.
    #[serde(with = "serde_friendly")]
    pub flush_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("perdure-data"),
            partitions: 1,
            ingress: IngressConfig {
                bind_address: ([127, 0, 0, 1], 8080).into(),
                request_size_limit: 32 << 20,
                advertised_address: None,
                path_prefix: None,
                queue_per_partition: 4096,
                concurrency_limit: 20_000,
            },
            admin: AdminConfig {
                bind_address: ([127, 0, 0, 1], 9070).into(),
                query_timeout: Duration::from_secs(30),
                auth_tokens: Vec::new(),
            },
            pg: PgConfig { enabled: true, bind_address: ([127, 0, 0, 1], 9071).into() },
            node: NodeConfig { enabled: true, bind_address: ([127, 0, 0, 1], 5122).into() },
            invoker: InvokerSettings {
                inactivity_timeout: Duration::from_secs(60),
                abort_timeout: Duration::from_secs(600),
                connect_timeout: Duration::from_secs(10),
                message_size_limit: 32 << 20,
                eager_state_size_limit: 32 << 20,
                concurrent_invocations_limit: 1000,
                trusted_ca_file: None,
            },
            retry_policy: RetryPolicyConfig {
                initial_interval: Duration::from_millis(500),
                exponentiation_factor: 2.0,
                max_attempts: 70,
                max_interval: Duration::from_secs(60),
                on_max_attempts: OnMaxAttempts::Pause,
            },
            default_idempotency_retention: Duration::from_secs(86_400),
            default_journal_retention: Duration::from_secs(86_400),
            default_workflow_completion_retention: Duration::from_secs(86_400),
            storage: StorageConfig {
                memtable_size: 32 << 20,
                cache_size: 16 << 20,
                flush_interval: Duration::from_secs(30),
            },
            deployments: DeploymentsConfig {
                auto_prune: false,
                keep_drained: 1,
                prune_interval: Duration::from_secs(30),
            },
            lambda: LambdaConfig {
                allow_latest: false,
                assume_role_external_id: None,
                request_compression_threshold: 4 << 20,
            },
            request_identity: RequestIdentityConfig { private_key_file: None, expiration: Duration::from_secs(60) },
            tracing: TracingConfig {
                endpoint: None,
                protocol: TracingProtocol::Grpc,
                service_name: "perdure".into(),
                sample_ratio: 1.0,
                export_interval: Duration::from_secs(1),
            },
            log_filter: "info".into(),
            log_format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid environment variable {name}: {reason}")]
    Env { name: String, reason: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

const ENV_PREFIX: &str = "PERDURE_";

impl Config {
    /// Defaults, then the file (`path`, or `./perdure.toml` when it exists), then env vars.
    pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        Self::load_reporting(path, env).map(|(config, _)| config)
    }

    /// As [`Config::load`], also naming the `PERDURE_*` variables that are not settings (tools
    /// of this repository use some, e.g. `PERDURE_CACHE`): they are ignored, and worth a warning.
    pub fn load_reporting(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut ignored = Vec::new();
        let mut merged = toml::Value::try_from(Config::default()).expect("defaults serialize to TOML");
        let default_file = Path::new("perdure.toml");
        let file = match path {
            Some(p) => Some(p.to_owned()),
            None if default_file.exists() => Some(default_file.to_owned()),
            None => None,
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Read { path: path.clone(), reason: e.to_string() })?;
            let value: toml::Value =
                toml::from_str(&text).map_err(|e| ConfigError::File { path: path.clone(), reason: e.to_string() })?;
            merge(&mut merged, value);
            // Checked here so that an error names the file rather than a later variable.
            merged.clone().try_into::<Config>().map_err(|e| ConfigError::File { path, reason: e.to_string() })?;
        }
        let mut otel = Vec::new();
        for (name, raw) in env {
            if name.starts_with("OTEL_") {
                otel.push((name, raw));
                continue;
            }
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            if rest.is_empty() || rest == "CONFIG" {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase().replace('_', "-")).collect();
            if merged.get(&path[0]).is_none() {
                ignored.push(name);
                continue;
            }
            set_path(&mut merged, &path, env_value(&raw));
            let check: Result<Config, _> = merged.clone().try_into();
            if let Err(e) = check {
                return Err(ConfigError::Env { name, reason: e.to_string() });
            }
        }
        let mut config: Config = merged.try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.tracing.apply_otel_env(&otel)?;
        config.validate()?;
        Ok((config, ignored))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.partitions == 0 || self.partitions > 1024 {
            return Err(ConfigError::Invalid(format!(
                "partitions must be between 1 and 1024, not {}",
                self.partitions
            )));
        }
        let factor = self.retry_policy.exponentiation_factor;
        if factor.is_nan() || factor < 1.0 {
            return Err(ConfigError::Invalid("retry-policy.exponentiation-factor must be at least 1.0".into()));
        }
        if self.invoker.concurrent_invocations_limit == 0 {
            return Err(ConfigError::Invalid("invoker.concurrent-invocations-limit must be at least 1".into()));
        }
        if !(Duration::from_millis(10)..=MAX_QUERY_TIMEOUT).contains(&self.admin.query_timeout) {
            return Err(ConfigError::Invalid(format!(
                "admin.query-timeout must be from 10ms to 1h, not {}",
                humantime::format_duration(self.admin.query_timeout)
            )));
        }
        if self.admin.auth_tokens.iter().any(|t| t.len() < 16) {
            return Err(ConfigError::Invalid("admin.auth-tokens must each be at least 16 characters long".into()));
        }
        if !self.admin.bind_address.ip().is_loopback() && self.admin.auth_tokens.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "admin.bind-address {} is not a loopback address: set admin.auth-tokens (clients send one as `Authorization: Bearer`), or bind 127.0.0.1",
                self.admin.bind_address
            )));
        }
        if self.pg.enabled && !self.pg.bind_address.ip().is_loopback() && self.admin.auth_tokens.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "pg.bind-address {} is not a loopback address: set admin.auth-tokens (clients give one as the password), or bind 127.0.0.1",
                self.pg.bind_address
            )));
        }
        if self.node.enabled && !self.node.bind_address.ip().is_loopback() && self.admin.auth_tokens.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "node.bind-address {} is not a loopback address: set admin.auth-tokens (Prometheus and gRPC clients send one as `Authorization: Bearer`; /health and grpc.health.v1 stay open), or bind 127.0.0.1",
                self.node.bind_address
            )));
        }
        if self.deployments.prune_interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid("deployments.prune-interval must be at least 100ms".into()));
        }
        if let Some(prefix) = &self.ingress.path_prefix
            && (!prefix.starts_with('/') || prefix.contains(['?', '#', ' ']) || prefix.contains("//"))
        {
            return Err(ConfigError::Invalid(format!(
                "ingress.path-prefix must be a path like \"/prod\" (starting with /, no ?, # or spaces), not {prefix:?}"
            )));
        }
        if !(16..=1 << 20).contains(&self.ingress.queue_per_partition) {
            return Err(ConfigError::Invalid(format!(
                "ingress.queue-per-partition must be from 16 to 1048576 requests, not {}",
                self.ingress.queue_per_partition
            )));
        }
        if !(1..=1 << 20).contains(&self.ingress.concurrency_limit) {
            return Err(ConfigError::Invalid(format!(
                "ingress.concurrency-limit must be from 1 to 1048576 requests, not {}",
                self.ingress.concurrency_limit
            )));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&self.request_identity.expiration) {
            return Err(ConfigError::Invalid(format!(
                "request-identity.expiration must be from 1s to 1d, not {}",
                humantime::format_duration(self.request_identity.expiration)
            )));
        }
        if self.lambda.request_compression_threshold == 0 {
            return Err(ConfigError::Invalid("lambda.request-compression-threshold must be at least 1 byte".into()));
        }
        let t = &self.tracing;
        if let Some(endpoint) = &t.endpoint {
            let uri: http::Uri = endpoint
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("tracing.endpoint {endpoint:?} is not a URL: {e}")))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(ConfigError::Invalid(format!(
                    "tracing.endpoint {endpoint:?} must be an http:// or https:// URL with a host"
                )));
            }
        }
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            return Err(ConfigError::Invalid(format!(
                "tracing.sample-ratio must be from 0 to 1, not {}",
                t.sample_ratio
            )));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&t.export_interval) {
            return Err(ConfigError::Invalid(format!(
                "tracing.export-interval must be from 10ms to 60s, not {}",
                humantime::format_duration(t.export_interval)
            )));
        }
        Ok(())
    }

    /// RocksDB's memory limits.
    pub fn storage_options(&self) -> crate::storage::StorageOptions {
        crate::storage::StorageOptions {
            memtable_bytes: self.storage.memtable_size as usize,
            cache_bytes: self.storage.cache_size as usize,
        }
    }

    /// The defaults registration applies where a manifest sets nothing.
    pub fn schema_defaults(&self) -> SchemaDefaults {
        let r = &self.retry_policy;
        SchemaDefaults {
            idempotency_retention: self.default_idempotency_retention.as_millis() as u64,
            journal_retention: self.default_journal_retention.as_millis() as u64,
            workflow_completion_retention: self.default_workflow_completion_retention.as_millis() as u64,
            inactivity_timeout: self.invoker.inactivity_timeout.as_millis() as u64,
            abort_timeout: self.invoker.abort_timeout.as_millis() as u64,
            retry_policy: RetrySettings {
                initial_interval: r.initial_interval.as_millis() as u64,
                exponentiation_factor: r.exponentiation_factor,
                max_attempts: (r.max_attempts > 0).then_some(r.max_attempts),
                max_interval: r.max_interval.as_millis() as u64,
                on_max_attempts: r.on_max_attempts,
            },
        }
    }

    /// The ingress URL `/version` reports.
    pub fn ingress_url(&self) -> String {
        self.ingress.advertised_address.clone().unwrap_or_else(|| format!("http://{}/", self.ingress.bind_address))
    }
}

impl TracingConfig {
    /// The standard OpenTelemetry variables, where perdure's own settings leave a gap.
    fn apply_otel_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        let get =
            |name: &str| env.iter().find(|(n, v)| n == name && !v.trim().is_empty()).map(|(_, v)| v.trim().to_owned());
        let protocol_var = ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]
            .into_iter()
            .find_map(|n| get(n).map(|v| (n, v)));
        if self.endpoint.is_none()
            && let Some((name, value)) = protocol_var
        {
            self.protocol = match value.as_str() {
                "grpc" => TracingProtocol::Grpc,
                "http/protobuf" => TracingProtocol::HttpProtobuf,
                other => {
                    return Err(ConfigError::Env {
                        name: name.to_owned(),
                        reason: format!("perdure exports OTLP as \"grpc\" or \"http/protobuf\", not {other:?}"),
                    });
                }
            };
        }
        if self.endpoint.is_none() {
            self.endpoint = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
                (Some(traces), _) => Some(traces),
                // The general endpoint is a base: over HTTP, traces go to its /v1/traces.
                (None, Some(base)) if self.protocol == TracingProtocol::HttpProtobuf => {
                    Some(format!("{}/v1/traces", base.trim_end_matches('/')))
                }
                (None, base) => base,
            };
        }
        if let Some(name) = get("OTEL_SERVICE_NAME")
            && self.service_name == "perdure"
        {
            self.service_name = name;
        }
        Ok(())
    }

    /// Where spans are sent: the endpoint, and over HTTP its `/v1/traces` when it names no path.
    pub fn export_url(&self) -> Option<String> {
        let endpoint = self.endpoint.as_deref()?;
        let bare = endpoint.parse::<http::Uri>().is_ok_and(|u| matches!(u.path(), "" | "/"));
        Some(match self.protocol {
            TracingProtocol::HttpProtobuf if bare => format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            _ => endpoint.to_owned(),
        })
    }
}

/// Environment values are TOML scalars when they parse as such (numbers, booleans),
/// else strings.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(v) = raw.parse::<i64>() {
        return toml::Value::Integer(v);
    }
    if let Ok(v) = raw.parse::<f64>() {
        return toml::Value::Float(v);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(root: &mut toml::Value, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = root;
    for p in parents {
        let table = match node {
            toml::Value::Table(t) => t,
            _ => return,
        };
        node = table.entry(p.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
    }
    if let toml::Value::Table(t) = node {
        t.insert(last.clone(), value);
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_readme() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.ingress.bind_address.to_string(), "127.0.0.1:8080");
        assert_eq!(c.admin.bind_address.to_string(), "127.0.0.1:9070");
        assert_eq!(c.pg.bind_address.to_string(), "127.0.0.1:9071");
        assert_eq!(c.data_dir, PathBuf::from("perdure-data"));
        assert_eq!(c.retry_policy.initial_interval, Duration::from_millis(500));
    }

    #[test]
    fn file_then_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perdure.toml");
        std::fs::write(
            &path,
            "data-dir = \"/tmp/x\"\n[ingress]\nbind-address = \"127.0.0.1:1\"\n[retry-policy]\ninitial-interval = \"2s\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("PERDURE_INGRESS__BIND_ADDRESS", "127.0.0.1:2"),
                ("PERDURE_RETRY_POLICY__MAX_ATTEMPTS", "3"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.ingress.bind_address.to_string(), "127.0.0.1:2");
        assert_eq!(c.retry_policy.initial_interval, Duration::from_secs(2));
        assert_eq!(c.retry_policy.max_attempts, 3);
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let e = Config::load(None, env(&[("PERDURE_INGRESS__BIND_ADDRESS", "nope")])).unwrap_err();
        assert!(e.to_string().contains("PERDURE_INGRESS__BIND_ADDRESS"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_INGRESS__BIND_ADRESS", "127.0.0.1:1")])).unwrap_err();
        assert!(e.to_string().contains("bind-adress"), "{e}");
        let (_, ignored) = Config::load_reporting(None, env(&[("PERDURE_CACHE", "/tmp")])).unwrap();
        assert_eq!(ignored, ["PERDURE_CACHE"]);
        let e = Config::load(None, env(&[("PERDURE_PG__BIND_ADDRESS", "0.0.0.0:9071")])).unwrap_err();
        assert!(e.to_string().contains("admin.auth-tokens"), "{e}");
        let c = Config::load(
            None,
            env(&[
                ("PERDURE_PG__BIND_ADDRESS", "0.0.0.0:9071"),
                ("PERDURE_ADMIN__AUTH_TOKENS", "0123456789abcdef, fedcba9876543210"),
            ]),
        )
        .unwrap();
        assert_eq!(c.admin.auth_tokens, ["0123456789abcdef", "fedcba9876543210"]);
        let e = Config::load(None, env(&[("PERDURE_ADMIN__BIND_ADDRESS", "0.0.0.0:9070")])).unwrap_err();
        assert!(e.to_string().contains("admin.bind-address") && e.to_string().contains("admin.auth-tokens"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_ADMIN__AUTH_TOKENS", "short")])).unwrap_err();
        assert!(e.to_string().contains("16 characters"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_RETRY_POLICY__ON_MAX_ATTEMPTS", "explode")])).unwrap_err();
        assert!(e.to_string().contains("on-max-attempts"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "no-such-key = 1\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("no-such-key"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_INGRESS__PATH_PREFIX", "prod")])).unwrap_err();
        assert!(e.to_string().contains("ingress.path-prefix"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_LAMBDA__ALLOW_LATEST", "maybe")])).unwrap_err();
        assert!(e.to_string().contains("PERDURE_LAMBDA__ALLOW_LATEST"), "{e}");
    }

    #[test]
    fn on_max_attempts_and_log_format_are_read_once_into_their_enums() {
        let c = Config::load(
            None,
            env(&[("PERDURE_RETRY_POLICY__ON_MAX_ATTEMPTS", "kill"), ("PERDURE_LOG_FORMAT", "json")]),
        )
        .unwrap();
        assert_eq!(c.schema_defaults().retry_policy.on_max_attempts, OnMaxAttempts::Kill);
        assert_eq!(c.log_format, LogFormat::Json);
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.schema_defaults().retry_policy.on_max_attempts, OnMaxAttempts::Pause);
        assert_eq!(c.log_format, LogFormat::Pretty);
        let e = Config::load(None, env(&[("PERDURE_RETRY_POLICY__ON_MAX_ATTEMPTS", "explode")])).unwrap_err();
        assert!(
            e.to_string().contains("retry-policy.on-max-attempts must be \"pause\" or \"kill\", not \"explode\""),
            "{e}"
        );
        let e = Config::load(None, env(&[("PERDURE_LOG_FORMAT", "xml")])).unwrap_err();
        assert!(e.to_string().contains("log-format must be \"pretty\" or \"json\", not \"xml\""), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perdure.toml");
        std::fs::write(&path, "log-format = \"JSON\"\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("log-format must be"), "{e}");
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json), "the --log-format flag's spelling");
    }

    #[test]
    fn the_query_timeout_is_bounded_and_its_deadline_cannot_overflow() {
        let e = Config::load(None, env(&[("PERDURE_ADMIN__QUERY_TIMEOUT", "2h")])).unwrap_err();
        assert!(e.to_string().contains("admin.query-timeout must be from 10ms to 1h, not 2h"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_ADMIN__QUERY_TIMEOUT", "5ms")])).unwrap_err();
        assert!(e.to_string().contains("admin.query-timeout must be from 10ms to 1h"), "{e}");
        let c = Config::load(None, env(&[("PERDURE_ADMIN__QUERY_TIMEOUT", "1h")])).unwrap();
        assert_eq!(c.admin.query_timeout, MAX_QUERY_TIMEOUT);
        // What the configuration refuses still does not panic where a deadline is computed.
        let now = tokio::time::Instant::now();
        assert!(crate::query::deadline_after(Duration::MAX) >= now);
    }

    #[test]
    fn lambda_and_path_prefix_settings() {
        let c = Config::load(
            None,
            env(&[("PERDURE_LAMBDA__ALLOW_LATEST", "true"), ("PERDURE_INGRESS__PATH_PREFIX", "/prod/")]),
        )
        .unwrap();
        assert!(c.lambda.allow_latest);
        assert_eq!(c.lambda.request_compression_threshold, 4 << 20);
        assert_eq!(c.ingress.normalized_path_prefix().as_deref(), Some("/prod"));
        assert_eq!(Config::default().ingress.normalized_path_prefix(), None);
    }

    #[test]
    fn ingress_bounds_out_of_range_are_refused_by_name() {
        let e = Config::load(None, env(&[("PERDURE_INGRESS__QUEUE_PER_PARTITION", "0")])).unwrap_err();
        assert!(e.to_string().contains("ingress.queue-per-partition must be from 16"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_INGRESS__CONCURRENCY_LIMIT", "0")])).unwrap_err();
        assert!(e.to_string().contains("ingress.concurrency-limit must be from 1"), "{e}");
        let c = Config::load(None, env(&[("PERDURE_INGRESS__CONCURRENCY_LIMIT", "5")])).unwrap();
        assert_eq!((c.ingress.concurrency_limit, c.ingress.queue_per_partition), (5, 4096));
    }

    #[test]
    fn tracing_takes_the_standard_otel_variables_where_perdure_sets_nothing() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.tracing.export_url(), None, "off by default");
        let c = Config::load(None, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")])).unwrap();
        assert_eq!(c.tracing.export_url().as_deref(), Some("http://collector:4317"));
        assert_eq!(c.tracing.protocol, TracingProtocol::Grpc);
        let c = Config::load(
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_SERVICE_NAME", "payments-gateway"),
            ]),
        )
        .unwrap();
        assert_eq!(c.tracing.export_url().as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(c.tracing.service_name, "payments-gateway");
        let c = Config::load(
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4317"),
                ("PERDURE_TRACING__ENDPOINT", "http://mine:4317"),
            ]),
        )
        .unwrap();
        assert_eq!(c.tracing.export_url().as_deref(), Some("http://mine:4317"), "perdure's own setting wins");
        let e = Config::load(
            None,
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL") && e.to_string().contains("http/json"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_TRACING__ENDPOINT", "collector:4317")])).unwrap_err();
        assert!(e.to_string().contains("tracing.endpoint"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_TRACING__SAMPLE_RATIO", "1.5")])).unwrap_err();
        assert!(e.to_string().contains("tracing.sample-ratio"), "{e}");
        let e = Config::load(None, env(&[("PERDURE_TRACING__PROTOCOL", "carrier-pigeon")])).unwrap_err();
        assert!(e.to_string().contains("PERDURE_TRACING__PROTOCOL"), "{e}");
    }
}
