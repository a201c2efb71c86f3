//! HTTP to deployments: HTTP/2 (with prior knowledge, h2c, for `http://`; negotiated by ALPN
//! over TLS for `https://`) by default, HTTP/1.1 when registered with `use_http_11`.
//! `https://` deployments are verified against the system's roots plus configured CAs. Request bodies are either complete
//! (request/response mode, discovery) or a channel the attempt keeps writing frames into
//! (bidi mode). [`DeploymentClient`] is the HTTP [`super::transport::Transport`] of attempts (implemented there).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_rustls::HttpsConnector;
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
    h2: Client<HttpsConnector<HttpConnector>, RequestBody>,
    h1: Client<HttpsConnector<HttpConnector>, RequestBody>,
}

/// A CA file for `https://` deployments that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invoker.trusted-ca-file {path}: {reason}")]
pub struct TlsError {
    pub path: PathBuf,
    pub reason: String,
}

/// The roots `https://` deployments are verified against: the system's, and `extra_ca`'s.
pub fn root_store(extra_ca: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, "system CA certificates for https deployments");
    if let Some(path) = extra_ca {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let error = |reason: String| TlsError { path: path.to_owned(), reason };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| error(e.to_string()))?;
        if certs.is_empty() {
            return Err(error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| error(e.to_string()))?;
        }
    }
    Ok(roots)
}

impl DeploymentClient {
    /// Pools for `http://` and `https://` deployments, verifying certificates against `roots`.
    pub fn with_roots(connect_timeout: Duration, roots: rustls::RootCertStore) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        connector.enforce_http(false);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Over TLS each pool offers exactly its protocol by ALPN.
        let https = |h2: bool| {
            let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls.clone()).https_or_http();
            if h2 {
                builder.enable_http2().wrap_connector(connector.clone())
            } else {
                builder.enable_http1().wrap_connector(connector.clone())
            }
        };
        let h2 = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_only(true)
            .http2_initial_stream_window_size(2 << 20)
            .http2_initial_connection_window_size(5 << 20)
            .http2_keep_alive_interval(Duration::from_secs(40))
            .http2_keep_alive_timeout(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(300))
            .build(https(true));
        let h1 = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https(false));
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
