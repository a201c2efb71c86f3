//! Rust SDK test services: the same `Greeter/greet` and `Counter/add|get` as the TypeScript
//! services, so the benchmark can measure perdure with the Rust SDK.
//!
//! Usage: `perdure-rust-services [port=9080]`; port 0 picks a free one. Prints exactly one
//! line `listening <port>` once it serves (HTTP/2 cleartext).

use restate_sdk::prelude::*;

struct Greeter;

#[restate_sdk::service]
impl Greeter {
    #[handler]
    async fn greet(&self, _ctx: Context<'_>, name: String) -> Result<String, HandlerError> {
        Ok(format!("Hello, {name}!"))
    }
}

struct Counter;

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

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening {}", listener.local_addr().expect("bound").port());
    // The SDK's own `HttpServer` leaves Nagle's algorithm on: a handler's last frames then
    // wait for the server's delayed ACK (up to 40 ms). Serve the same endpoint with
    // TCP_NODELAY, as the Node SDK does.
    let endpoint = restate_sdk::hyper::HyperEndpoint::new(Endpoint::builder().bind(Greeter).bind(Counter).build());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), endpoint);
            let _ = conn.await;
        });
    }
}
