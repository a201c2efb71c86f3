//! The web console at `/ui`: one page (`ui/index.html`, `ui/app.js`, `ui/app.css`) built into
//! the binary, that reads and acts only through the admin API beside it (the same routes and
//! `POST /query` the CLIs use).
//!
//! The shell is served without `admin.auth-tokens`: it holds no data. The page asks for a
//! token when the API answers 401 and sends it as `Authorization: Bearer` itself.
//!
//! Every path under `/ui/` that is not an asset answers the page (its router picks the view
//! from the path), so a reload or a shared link to `/ui/invocations/inv_…` works. The page
//! names its assets with a hash of their content: they are cached for a day, the page is
//! revalidated each time, so a new binary's console is seen at once.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// The page, with its asset links stamped with [`BUILD`].
static PAGE: LazyLock<String> = LazyLock::new(|| INDEX.replace("{{build}}", &BUILD));

/// A hash of the assets (FNV-1a), so a changed asset gets a new URL.
static BUILD: LazyLock<String> = LazyLock::new(|| {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in APP_JS.bytes().chain(APP_CSS.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
});

/// The assets under `/ui/assets/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] =
    &[("app.js", "text/javascript; charset=utf-8", APP_JS), ("app.css", "text/css; charset=utf-8", APP_CSS)];

/// Whether `path` is the console's shell, which needs no admin token.
pub fn is_open(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// `GET /` (to the console, as Restate answers), `/ui`, `/ui/` and `/ui/{*path}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/{*path}", get(path))
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE.as_str())
        .into_response()
}

async fn path(Path(path): Path<String>) -> Response {
    let Some(name) = path.strip_prefix("assets/") else { return page().await };
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=86400")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such console asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn call(uri: &str) -> (StatusCode, Option<String>, Option<String>, String) {
        let response = routes::<()>().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let header =
            |name| response.headers().get(name).map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned());
        let (content_type, cache) = (header(header::CONTENT_TYPE), header(header::CACHE_CONTROL));
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, cache, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_answers_every_view_path_and_links_its_assets_by_content_hash() {
        for uri in ["/ui", "/ui/", "/ui/invocations/inv_1abc", "/ui/deployments"] {
            let (status, content_type, cache, body) = call(uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"), "{uri}");
            assert_eq!(cache.as_deref(), Some("no-cache"), "{uri}");
            assert!(body.contains(&format!("/ui/assets/app.js?v={}", *BUILD)), "{body}");
            assert!(!body.contains("{{build}}"), "{body}");
        }
    }

    #[tokio::test]
    async fn assets_have_their_content_type_and_a_cache_header_and_unknown_ones_are_404() {
        let (status, content_type, cache, body) = call("/ui/assets/app.js").await;
        assert_eq!((status, content_type.as_deref()), (StatusCode::OK, Some("text/javascript; charset=utf-8")));
        assert_eq!(cache.as_deref(), Some("public, max-age=86400"));
        assert_eq!(body, APP_JS);
        let (_, content_type, _, _) = call("/ui/assets/app.css").await;
        assert_eq!(content_type.as_deref(), Some("text/css; charset=utf-8"));
        assert_eq!(call("/ui/assets/nope.js").await.0, StatusCode::NOT_FOUND);
        let (status, ..) = call("/").await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    }

    #[test]
    fn only_the_shell_is_open() {
        assert!(is_open("/ui") && is_open("/ui/") && is_open("/ui/assets/app.js") && is_open("/"));
        assert!(!is_open("/uix") && !is_open("/deployments") && !is_open("/query"));
    }
}
