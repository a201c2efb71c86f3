//! `bootstrap` entry point: reads the environment, starts the local endpoint and serves Lambda events.

use std::collections::HashMap;

use perdure_lambda_adapter::{Adapter, Config};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::from_env_map(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("perdure-lambda-adapter: invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    let adapter = Adapter::start(config).await?;
    lambda_runtime::run(lambda_runtime::service_fn(move |ev| {
        let adapter = adapter.clone();
        async move { adapter.handle(ev).await }
    }))
    .await
}
