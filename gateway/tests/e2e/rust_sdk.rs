//! The Rust SDK (`restate-sdk` from crates.io) as an in-process deployment: a service that
//! sleeps, runs side effects and calls a virtual object.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde_json::json;

use crate::harness::*;

pub struct RustGreeter;

#[restate_sdk::service]
impl RustGreeter {
    #[handler]
    async fn greet(&self, _ctx: Context<'_>, name: String) -> Result<String, HandlerError> {
        Ok(format!("Hi {name}, from Rust"))
    }

    #[handler(name = "napThenGreet")]
    async fn nap_then_greet(&self, ctx: Context<'_>, name: String) -> Result<String, HandlerError> {
        ctx.sleep(Duration::from_millis(200)).await?;
        let shout = ctx.run(|| async move { Ok(name.to_uppercase()) }).name("shout").await?;
        Ok(format!("Good morning {shout}"))
    }

    #[handler(name = "countVisit")]
    async fn count_visit(&self, ctx: Context<'_>, name: String) -> Result<String, HandlerError> {
        let n = ctx.object_client::<RustCounterClient>(name.clone()).add(1).call().await?;
        Ok(format!("{name} visited {n} times"))
    }

    #[handler]
    async fn refuse(&self, _ctx: Context<'_>, _name: String) -> Result<String, HandlerError> {
        Err(TerminalError::new_with_code(418, "I am a teapot").into())
    }
}

pub struct RustCounter;

#[restate_sdk::object]
impl RustCounter {
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

    /// The same with lazy state: the server sends no state up front; reads are round trips.
    #[handler(name = "lazyAdd", lazy_state = true)]
    async fn lazy_add(&self, ctx: ObjectContext<'_>, n: u64) -> Result<u64, HandlerError> {
        let next = ctx.get::<u64>("count").await?.unwrap_or(0) + n;
        ctx.set("count", next);
        ctx.set("touched", true);
        Ok(next)
    }

    #[handler(lazy_state = true)]
    async fn keys(&self, ctx: SharedObjectContext<'_>) -> Result<Json<Vec<String>>, HandlerError> {
        let mut keys = ctx.get_keys().await?;
        keys.sort();
        Ok(Json(keys))
    }
}

/// A service and an object whose handlers say which deployment ran them (its `tag`), for the
/// versioning tests.
pub struct RustTagged {
    pub tag: &'static str,
}

#[restate_sdk::service]
impl RustTagged {
    /// Sleeps `ms` durably, then answers the tag of the deployment it finished on.
    #[handler]
    async fn sleepy(&self, ctx: Context<'_>, ms: u64) -> Result<String, HandlerError> {
        ctx.sleep(Duration::from_millis(ms)).await?;
        Ok(self.tag.to_owned())
    }
}

pub struct RustTaggedObject {
    pub tag: &'static str,
}

#[restate_sdk::object]
impl RustTaggedObject {
    #[handler]
    async fn whoami(&self, _ctx: SharedObjectContext<'_>) -> Result<String, HandlerError> {
        Ok(self.tag.to_owned())
    }
}

/// The Rust SDK endpoint, served by its own runtime on a background thread.
pub struct RustServices {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl crate::harness::Services for RustServices {
    fn url(&self) -> String {
        RustServices::url(self)
    }
}

impl RustServices {
    pub fn start() -> Self {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> Self {
        Self::serve(port, || Endpoint::builder().bind(RustGreeter).bind(RustCounter).build())
    }

    /// `RustTagged` and `RustTaggedObject` answering `tag`.
    pub fn start_tagged(tag: &'static str) -> Self {
        Self::serve(0, move || Endpoint::builder().bind(RustTagged { tag }).bind(RustTaggedObject { tag }).build())
    }

    fn serve(port: u16, endpoint: impl FnOnce() -> Endpoint + Send + 'static) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind rust sdk endpoint");
                ready_tx.send(listener.local_addr().unwrap().port()).unwrap();
                HttpServer::new(endpoint())
                    .serve_with_cancel(listener, async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let port = ready_rx.recv_timeout(Duration::from_secs(10)).expect("rust endpoint listening");
        Self { port, stop: Some(stop), thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for RustServices {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn rust_sdk_services_run_durably() {
    let perdure = Perdure::start();
    let svc = RustServices::start();
    let (status, body) = perdure.register(&svc.url(), json!({}));
    assert_eq!(status, 201, "{body}");
    assert!(body["sdk_version"].as_str().unwrap_or_default().contains("rust"), "{body}");
    let i = &perdure.ingress;

    assert_eq!(post_json(&format!("{i}/RustGreeter/greet"), "\"Ada\"").body, "\"Hi Ada, from Rust\"");
    assert_eq!(post_json(&format!("{i}/RustGreeter/napThenGreet"), "\"ada\"").body, "\"Good morning ADA\"");
    assert_eq!(post_json(&format!("{i}/RustGreeter/countVisit"), "\"bob\"").body, "\"bob visited 1 times\"");
    assert_eq!(post_json(&format!("{i}/RustGreeter/countVisit"), "\"bob\"").body, "\"bob visited 2 times\"");
    assert_eq!(get(&format!("{i}/RustCounter/bob/get")).body, "2");
    // Lazy state: reads and key listings answered by the server during the attempt.
    assert_eq!(post_json(&format!("{i}/RustCounter/bob/lazyAdd"), "5").body, "7");
    assert_eq!(get(&format!("{i}/RustCounter/bob/keys")).body, "[\"count\",\"touched\"]");
    assert_eq!(get(&format!("{i}/RustCounter/bob/get")).body, "7");
    let r = post_json(&format!("{i}/RustGreeter/refuse"), "\"x\"");
    assert_eq!(r.status, 418);
    assert_eq!(r.json()["message"], "I am a teapot");
}
