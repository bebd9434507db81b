//! The HTTP hardening stack: every answer goes through it, in this order
//! (outermost first):
//!
//! 1. a request span ([`TraceLayer`]: method, path, matched route, status,
//!    latency; 5xx answers logged at `error`);
//! 2. metrics: one count and one latency per matched route, method and
//!    status class ([`Metrics`]);
//! 3. JSON errors: any 4xx or 5xx answer whose body is not JSON (a body
//!    limit, an extractor's rejection) gets the house's
//!    `{"error": {"code", "message"}}` body, its status and headers kept;
//! 4. security headers: `X-Content-Type-Options: nosniff`,
//!    `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, a
//!    `Content-Security-Policy` ([`DEFAULT_CSP`] unless the handler set a
//!    stricter one) and `Cache-Control: no-store` unless the handler set its
//!    own (API answers never set one, so they are never cached);
//! 5. CORS, only when origins are configured ([`Hardening::cors_origins`]):
//!    `GET`/`HEAD`/`POST` from those origins, with `Authorization`;
//! 6. cross-site refusal: a request that changes state (`POST`) from a
//!    page of another origin than the server's own or the CORS origins gets
//!    a JSON 403 `cross_site` ([`origin`](crate::origin));
//! 7. load shedding: at most [`Hardening::max_concurrency`] requests in
//!    flight; one more is refused at once with a JSON 503 and
//!    `Retry-After` instead of queueing;
//! 8. a request timeout: a handler slower than [`Hardening::request_timeout`]
//!    ([`Hardening::generate_timeout`] for `POST /api/predictions/generate`,
//!    which waits on the prediction chain) gets a JSON 503
//!    (`"code": "timeout"`). Streams (`/api/events`) are not cut: the
//!    timeout covers the answer's head only;
//! 9. a body limit: a request body over [`Hardening::max_body_bytes`] gets
//!    a JSON 413 (at once when `Content-Length` says so, else when read);
//! 10. a panic in a handler becomes a JSON 500 instead of a dropped connection.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::origin::{AllowedOrigins, refuse_cross_site};

/// The content security policy of every answer that sets none: resources
/// from this origin only, never framed.
pub const DEFAULT_CSP: &str = "default-src 'self'; frame-ancestors 'none'";
/// `Retry-After` of a 503 from load shedding, seconds.
pub const OVERLOAD_RETRY_AFTER_S: u64 = 1;
/// How much of a non-JSON error body is kept as the JSON error's message.
const ERROR_TEXT_LIMIT: usize = 2048;

/// The limits and browser policy of the HTTP layer.
///
/// ```
/// use spe_server_example::Hardening;
///
/// let hardening = Hardening::default();
/// assert_eq!(hardening.max_body_bytes, 64 * 1024);
/// assert!(hardening.cors_origins.is_empty()); // no CORS unless configured
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// Largest request body, bytes; larger gets 413.
    pub max_body_bytes: usize,
    /// Requests in flight at once; one more gets 503 at once.
    pub max_concurrency: usize,
    /// Time a handler may take to produce its answer's head; longer gets 503.
    pub request_timeout: Duration,
    /// The same for `POST /api/predictions/generate` (the prediction
    /// chain's own timeouts bound it; this is a backstop above them).
    pub generate_timeout: Duration,
    /// Browser origins allowed by CORS (`https://host[:port]`); none: no CORS.
    pub cors_origins: Vec<String>,
}

impl Default for Hardening {
    fn default() -> Self {
        Hardening {
            max_body_bytes: 64 * 1024,
            max_concurrency: 512,
            request_timeout: Duration::from_secs(10),
            generate_timeout: Duration::from_secs(180),
            cors_origins: Vec::new(),
        }
    }
}

/// Wrap every route and fallback of `router` in the hardening stack (see the
/// [module documentation](self)), recording into `metrics`.
pub fn harden(router: Router, hardening: &Hardening, metrics: Arc<Metrics>) -> Router {
    let router = router
        // Innermost, so its 500 gets everything below too.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(RequestBodyLimitLayer::new(hardening.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Timeouts {
                default: hardening.request_timeout,
                generate: hardening.generate_timeout,
            },
            request_timeout,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overload))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(hardening.max_concurrency)),
        )
        .layer(middleware::from_fn_with_state(
            Arc::new(AllowedOrigins::new(&hardening.cors_origins)),
            refuse_cross_site,
        ));
    let router = match cors(&hardening.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(metrics, record_metrics))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        route,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
        )
}

/// The CORS layer for `origins`; `None` when there is none (no CORS headers).
/// They are compared as the cross-site check compares them (ASCII case and
/// a trailing `/` aside): browsers send the `Origin` header in lower case.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
        .filter_map(|o| match HeaderValue::from_str(&o) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(origin = %o, error = %e, "CORS origin left out");
                None
            }
        })
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::HEAD, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// The path whose handler waits on the prediction chain.
const GENERATE_PATH: &str = "/api/predictions/generate";

/// The request timeouts: one for every route, one for regeneration.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    default: Duration,
    generate: Duration,
}

/// Cut a handler that takes longer than its route's timeout.
async fn request_timeout(
    State(timeouts): State<Timeouts>,
    request: Request,
    next: Next,
) -> Response {
    let limit = match request.extensions().get::<MatchedPath>() {
        Some(path) if path.as_str() == GENERATE_PATH => timeouts.generate,
        _ => timeouts.default,
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long to answer",
        )
        .into_response(),
    }
}

/// The answer to a request refused by load shedding.
async fn overload(error: tower::BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is handling too many requests; retry shortly",
        )
        .with_retry_after(OVERLOAD_RETRY_AFTER_S)
        .into_response()
    } else {
        tracing::error!(error = %error, "unexpected middleware error");
        ApiError::internal("internal error; the server keeps running").into_response()
    }
}

/// A handler's panic as a JSON 500.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %what, "a handler panicked");
    ApiError::internal("internal error; the server keeps running").into_response()
}

/// Whether the answer's body is JSON.
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The machine code of an error status without one.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Give any error answer without a JSON body the house's JSON error body.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, ERROR_TEXT_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match (status, text.is_empty()) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => "the request body is too large".to_owned(),
        (_, false) => text,
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
    };
    let json = ApiError::new(status, code_for(status), message).body();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json.to_string()))
}

/// Count the request and its latency under its matched route.
async fn record_metrics(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(&route, &method, response.status(), start.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{call, header_str, send};
    use axum::routing::get;
    use serde_json::Value;
    use std::sync::Mutex;
    use tokio::sync::{Notify, oneshot};

    fn hardened(router: Router, hardening: Hardening) -> Router {
        harden(router, &hardening, Arc::new(Metrics::new()))
    }

    fn json(body: &[u8]) -> Value {
        serde_json::from_slice(body).expect("a JSON body")
    }

    #[tokio::test]
    async fn one_request_too_many_is_shed_at_once_with_a_json_503() {
        // `/slow` tells when it is in, then waits to be released.
        let entered: Arc<Mutex<Option<oneshot::Sender<()>>>> = Arc::new(Mutex::new(None));
        let release = Arc::new(Notify::new());
        let (entered_tx, entered_rx) = oneshot::channel();
        *entered.lock().expect("lock") = Some(entered_tx);
        let slow = {
            let entered = Arc::clone(&entered);
            let release = Arc::clone(&release);
            move || async move {
                if let Some(tx) = entered.lock().expect("lock").take() {
                    let _ = tx.send(());
                }
                release.notified().await;
                "done"
            }
        };
        let app = hardened(
            Router::new()
                .route("/slow", get(slow))
                .route("/fast", get(|| async { "fast" })),
            Hardening {
                max_concurrency: 1,
                ..Hardening::default()
            },
        );
        let first = tokio::spawn({
            let app = app.clone();
            async move { call(&app, Method::GET, "/slow").await }
        });
        entered_rx.await.expect("the first request is in");
        // The only slot is taken: shed, not queued.
        let (status, headers, body) = call(&app, Method::GET, "/fast").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header_str(&headers, header::RETRY_AFTER), Some("1"));
        assert_eq!(
            header_str(&headers, header::CACHE_CONTROL),
            Some("no-store")
        );
        assert_eq!(json(&body)["error"]["code"], "overloaded");
        release.notify_one();
        let (status, _, body) = first.await.expect("no panic");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"done");
        // The slot is free again.
        let (status, _, _) = call(&app, Method::GET, "/fast").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_past_the_timeout_gets_a_json_503() {
        // Time is paused: the runtime jumps to the timeout when idle.
        let app = hardened(
            Router::new().route("/hang", get(std::future::pending::<&'static str>)),
            Hardening {
                request_timeout: Duration::from_millis(250),
                ..Hardening::default()
            },
        );
        let (status, headers, body) = call(&app, Method::GET, "/hang").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            header_str(&headers, header::X_CONTENT_TYPE_OPTIONS),
            Some("nosniff")
        );
        assert_eq!(json(&body)["error"]["code"], "timeout");
    }

    #[tokio::test]
    async fn non_json_errors_get_the_json_error_body() {
        async fn teapot() -> (
            StatusCode,
            [(header::HeaderName, &'static str); 1],
            &'static str,
        ) {
            (
                StatusCode::IM_A_TEAPOT,
                [(header::ALLOW, "GET")],
                "short and stout",
            )
        }
        async fn plain_400() -> (StatusCode, &'static str) {
            (StatusCode::BAD_REQUEST, "")
        }
        let app = hardened(
            Router::new()
                .route("/teapot", get(teapot))
                .route("/400", get(plain_400))
                .route("/ok", get(|| async { "fine" })),
            Hardening::default(),
        );
        let (status, headers, body) = call(&app, Method::GET, "/teapot").await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(header_str(&headers, header::ALLOW), Some("GET"));
        assert_eq!(
            header_str(&headers, header::CONTENT_TYPE),
            Some("application/json")
        );
        assert_eq!(
            json(&body),
            serde_json::json!({"error": {"code": "error", "message": "short and stout"}})
        );
        let (_, _, body) = call(&app, Method::GET, "/400").await;
        assert_eq!(
            json(&body),
            serde_json::json!({"error": {"code": "bad_request", "message": "Bad Request"}})
        );
        // Success is left alone.
        let (status, headers, body) = call(&app, Method::GET, "/ok").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"fine");
        assert!(
            header_str(&headers, header::CONTENT_TYPE).is_some_and(|t| t.starts_with("text/plain"))
        );
    }

    fn preflight(origin: &str) -> axum::http::Request<Body> {
        axum::http::Request::builder()
            .method(Method::OPTIONS)
            .uri("/api")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
            .body(Body::empty())
            .expect("a request")
    }

    #[tokio::test]
    async fn cors_is_off_unless_origins_are_configured() {
        let routes = || Router::new().route("/api", get(|| async { "x" }).post(|| async { "y" }));
        let closed = hardened(routes(), Hardening::default());
        let (_, headers, _) = send(&closed, preflight("https://ops.example.com")).await;
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

        let open = hardened(
            routes(),
            Hardening {
                cors_origins: vec!["https://ops.example.com".into()],
                ..Hardening::default()
            },
        );
        let (status, headers, _) = send(&open, preflight("https://ops.example.com")).await;
        assert!(status.is_success(), "{status}");
        assert_eq!(
            header_str(&headers, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://ops.example.com")
        );
        assert!(
            header_str(&headers, header::ACCESS_CONTROL_ALLOW_HEADERS)
                .is_some_and(|h| h.contains("authorization"))
        );
        // Another origin gets no grant.
        let (_, headers, _) = send(&open, preflight("https://evil.example.net")).await;
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[tokio::test]
    async fn cors_origins_match_whatever_their_case() {
        // Origins are case-insensitive; browsers send them in lower case.
        // The cross-site check already compares them so: CORS must too.
        let app = hardened(
            Router::new().route("/api", get(|| async { "x" }).post(|| async { "y" })),
            Hardening {
                cors_origins: vec!["https://Ops.Example.com/".into()],
                ..Hardening::default()
            },
        );
        let (_, headers, _) = send(&app, preflight("https://ops.example.com")).await;
        assert_eq!(
            header_str(&headers, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://ops.example.com")
        );
    }

    #[test]
    fn codes_for_statuses() {
        assert_eq!(code_for(StatusCode::PAYLOAD_TOO_LARGE), "payload_too_large");
        assert_eq!(code_for(StatusCode::TOO_MANY_REQUESTS), "too_many_requests");
        assert_eq!(code_for(StatusCode::BAD_GATEWAY), "internal");
        assert_eq!(code_for(StatusCode::IM_A_TEAPOT), "error");
    }
}
