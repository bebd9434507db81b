//! JSON error answers: `{"error": {"code": "...", "message": "..."}}`.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
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
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
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
        (self.status, Json(self.body())).into_response()
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
