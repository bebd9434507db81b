//! JSON error answers: `{"error": {"code": "...", "message": "..."}}`.
//!
//! A 401 carries `WWW-Authenticate: Bearer`; an error made with
//! [`ApiError::with_retry_after`] (429, load-shedding 503) carries
//! `Retry-After`.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: an HTTP status, a stable machine `code` and a sentence
/// for humans.
///
/// ```
/// use axum::http::StatusCode;
/// use spe_server_example::ApiError;
///
/// let e = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no route for /x");
/// assert_eq!(e.status(), StatusCode::NOT_FOUND);
/// assert_eq!(e.body()["error"]["code"], "not_found");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// The same error, telling the client to retry after `seconds`
    /// (`Retry-After`; at least 1).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }

    /// 401 `unauthorized`: no or a wrong bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 429 `too_many_requests`, retry after `seconds`.
    pub fn too_many_requests(seconds: u64) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many requests; retry in {} s", seconds.max(1)),
        )
        .with_retry_after(seconds)
    }

    /// 503 with this `code`: something the answer needs is not available.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 400 `bad_request` for input the server cannot accept.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found` for a path no route serves.
    pub fn not_found(uri: &Uri) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no resource at {}", uri.path()),
        )
    }

    /// 405 `method_not_allowed` for a known path with the wrong method.
    pub fn method_not_allowed(method: &Method, uri: &Uri) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {}", uri.path()),
        )
    }

    /// 500 `internal` (only for a bug caught at the edge, never for an
    /// upstream failure).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Seconds after which the client may retry, if said.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after_s
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"spe\""),
            );
        }
        response
    }
}

/// Fallback handler: 404 for any unknown path.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(&uri)
}

/// Fallback handler: 405 for a known path with the wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(&method, &uri)
}
