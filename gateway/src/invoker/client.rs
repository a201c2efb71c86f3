//! HTTP to deployments: HTTP/2 with prior knowledge (h2c) for `http://` deployments by
//! default, HTTP/1.1 when registered with `use_http_11`. Request bodies are either complete
//! (request/response mode, discovery) or a channel the attempt keeps writing frames into
//! (bidi mode).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc;

use crate::schema::HttpVersion;

/// A request body: all at once, or streamed from a channel until its sender drops.
pub enum RequestBody {
    Full(Option<Bytes>),
    Stream(mpsc::UnboundedReceiver<Bytes>),
}

impl RequestBody {
    pub fn empty() -> Self {
        RequestBody::Full(None)
    }

    /// A streamed body and the sender that writes it; dropping the sender ends it.
    pub fn channel() -> (mpsc::UnboundedSender<Bytes>, Self) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, RequestBody::Stream(rx))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut *self {
            RequestBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            RequestBody::Stream(rx) => rx.poll_recv(cx).map(|chunk| chunk.map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, RequestBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            RequestBody::Full(None) => SizeHint::with_exact(0),
            RequestBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// Connection pools to deployments, one per HTTP version.
#[derive(Clone)]
pub struct DeploymentClient {
    h2: Client<HttpConnector, RequestBody>,
    h1: Client<HttpConnector, RequestBody>,
}

impl DeploymentClient {
    pub fn new(connect_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        connector.enforce_http(true);
        let h2 = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_only(true)
            .http2_initial_stream_window_size(2 << 20)
            .http2_initial_connection_window_size(5 << 20)
            .http2_keep_alive_interval(Duration::from_secs(40))
            .http2_keep_alive_timeout(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(300))
            .build(connector.clone());
        let h1 = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { h2, h1 }
    }

    pub async fn request(
        &self,
        version: &HttpVersion,
        request: http::Request<RequestBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        match version {
            HttpVersion::Http2 => self.h2.request(request).await,
            HttpVersion::Http11 => self.h1.request(request).await,
        }
    }
}

/// Joins a deployment's base URI and a path as Restate does: the base's path prefix keeps
/// its segments (one trailing `/` dropped), the path's leading `/` is dropped, and the
/// base's query string is kept.
pub fn join_uri(base: &str, path: &str) -> Result<http::Uri, http::uri::InvalidUri> {
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let mut out = String::with_capacity(base.len() + path.len() + 8);
    out.push_str(base.strip_suffix('/').unwrap_or(base));
    out.push('/');
    out.push_str(path.strip_prefix('/').unwrap_or(path));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out.parse()
}

/// Percent-encodes a value for use in a header or URL path segment.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_restate() {
        assert_eq!(join_uri("http://h:9080/", "/discover").unwrap(), "http://h:9080/discover");
        assert_eq!(join_uri("http://h:9080/p/", "/invoke/A/b").unwrap(), "http://h:9080/p/invoke/A/b");
        assert_eq!(join_uri("http://h:9080/p?x=1", "/discover").unwrap(), "http://h:9080/p/discover?x=1");
    }

    #[test]
    fn encodes_keys() {
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(percent_encode("plain-key_1"), "plain-key_1");
    }
}
