//! Rust SDK test services: the same `Greeter/greet`, `Greeter/sleepy` and `Counter/add|get` as
//! the TypeScript services, served over HTTP/2 (`perdure-rust-services`) or as an AWS Lambda
//! function (`perdure-rust-lambda`).
//!
//! Environment: `TAG` (default `v1`) is echoed by `sleepy`, so a test can tell which code
//! answered; `VARIANT=drop:Greeter.sleepy` serves a Greeter without `sleepy` (a breaking change).

use restate_sdk::prelude::*;

/// Which code answered (`TAG`).
fn tag() -> String {
    std::env::var("TAG").unwrap_or_else(|_| "v1".into())
}

pub struct Greeter;

#[restate_sdk::service]
impl Greeter {
    #[handler]
    async fn greet(&self, _ctx: Context<'_>, name: String) -> Result<String, HandlerError> {
        Ok(format!("Hello, {name}!"))
    }

    /// A durable sleep of `ms`, then which code finished it.
    #[handler]
    async fn sleepy(&self, ctx: Context<'_>, ms: u64) -> Result<String, HandlerError> {
        ctx.sleep(std::time::Duration::from_millis(ms)).await?;
        Ok(format!("finished on {}", tag()))
    }

    /// Blocks for `ms` without journaling anything (a Lambda timeout, say), then answers.
    #[handler]
    async fn stall(&self, _ctx: Context<'_>, ms: u64) -> Result<String, HandlerError> {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        Ok("stalled".into())
    }
}

/// The Greeter of `VARIANT=drop:Greeter.sleepy`.
pub struct GreeterWithoutSleepy;

#[restate_sdk::service(name = "Greeter")]
impl GreeterWithoutSleepy {
    #[handler]
    async fn greet(&self, _ctx: Context<'_>, name: String) -> Result<String, HandlerError> {
        Ok(format!("Hello, {name}!"))
    }
}

pub struct Counter;

#[restate_sdk::object]
impl Counter {
    #[handler]
    async fn add(&self, ctx: ObjectContext<'_>, n: u64) -> Result<u64, HandlerError> {
        let next = ctx.get::<u64>("count").await?.unwrap_or(0) + n;
        ctx.set("count", next);
        Ok(next)
    }

    #[handler]
    async fn get(&self, ctx: SharedObjectContext<'_>) -> Result<u64, HandlerError> {
        Ok(ctx.get::<u64>("count").await?.unwrap_or(0))
    }
}

/// The endpoint with the services `VARIANT` asks for.
pub fn endpoint() -> Endpoint {
    let builder = Endpoint::builder().bind(Counter);
    match std::env::var("VARIANT").as_deref() {
        Ok("drop:Greeter.sleepy") => builder.bind(GreeterWithoutSleepy),
        _ => builder.bind(Greeter),
    }
    .build()
}
