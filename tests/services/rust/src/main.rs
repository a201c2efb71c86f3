//! `perdure-rust-services [port=9080]`: the Rust SDK test services over HTTP/2 cleartext;
//! port 0 picks a free one. Prints exactly one line `listening <port>` once it serves.

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening {}", listener.local_addr().expect("bound").port());
    // The SDK's own `HttpServer` leaves Nagle's algorithm on: a handler's last frames then
    // wait for the server's delayed ACK (up to 40 ms). Serve the same endpoint with
    // TCP_NODELAY, as the Node SDK does.
    let endpoint = restate_sdk::hyper::HyperEndpoint::new(perdure_rust_services::endpoint());
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
