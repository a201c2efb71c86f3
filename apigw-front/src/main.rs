//! `perdure-apigw-front`: Lambda entry point (see the crate docs in `lib.rs`).

use lambda_http::{Request, service_fn};
use perdure_apigw_front::{Config, build_client, forward};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("invalid configuration: {e}");
            return Err(e.into());
        }
    };
    tracing::info!(ingress = %config.ingress_url, strip_prefix = ?config.strip_prefix, timeout = ?config.timeout, "perdure-apigw-front starting");

    // Both live for the whole process; leaking them gives the handler plain references.
    let config: &'static Config = Box::leak(Box::new(config));
    let client: &'static perdure_apigw_front::Client = Box::leak(Box::new(build_client()));

    lambda_http::run(service_fn(move |request: Request| forward(config, client, request))).await
}
