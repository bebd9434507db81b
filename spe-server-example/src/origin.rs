//! Cross-site requests that change state are refused: a web page the
//! operator's browser has open elsewhere must not be able to make the
//! server act (cross-site request forgery), even when no admin token is
//! set and the browser, on the operator's machine, is a loopback client.
//!
//! A request whose method is not safe (anything but `GET`, `HEAD`,
//! `OPTIONS` and `TRACE`; here, `POST /api/predictions/generate`) is
//! refused with a JSON 403 `cross_site` when ([`check`]):
//!
//! - its `Origin` is one of the configured CORS origins
//!   ([`Hardening::cors_origins`](crate::Hardening)): never refused;
//! - else its `Sec-Fetch-Site` is `cross-site` (a browser says the page
//!   that sent it belongs to another site);
//! - else it has an `Origin` that is not the server's own: its host and
//!   port (the scheme's default port when none is written) differ from
//!   those of the `Host` header (or of the request's URI authority, for
//!   HTTP/2), or there is none to compare with, or it is `null` (a
//!   sandboxed or `file:` page).
//!
//! A request with neither header (curl, scripts, the server's tests) is not
//! a browser's and passes. The scheme is not compared: behind a TLS proxy
//! the server cannot know it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The `Sec-Fetch-Site` header (RFC-to-be, Fetch Metadata).
const SEC_FETCH_SITE: &str = "sec-fetch-site";
/// An `Origin` longer than this is not echoed in the error message.
const ECHO_LIMIT: usize = 128;

/// The origins allowed besides the server's own: the CORS origins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// These origins (`https://host[:port]`, compared without regard to
    /// ASCII case and a trailing `/`).
    pub fn new(origins: &[String]) -> Self {
        AllowedOrigins(
            origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        )
    }

    fn contains(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.0.contains(&origin)
    }
}

/// Whether `method` changes nothing (RFC 9110 §9.2.1).
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Host and port of an authority (`host[:port]`, `[v6]:port`), lower case,
/// the port `default_port` when none is written; `None` if malformed.
fn host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let authority = authority.to_ascii_lowercase();
    // `rest` is what follows the host: empty, or `:port`.
    let (host, rest) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            (format!("[{host}]"), rest)
        }
        None => match authority.find(':') {
            Some(i) => (authority[..i].to_owned(), &authority[i..]),
            None => (authority.clone(), ""),
        },
    };
    let port = match rest.strip_prefix(':') {
        Some(digits) => digits.parse().ok()?,
        None if rest.is_empty() => default_port,
        None => return None,
    };
    (!host.is_empty()).then_some((host, port))
}

/// The host and port of a serialized origin (`scheme://host[:port]`).
fn origin_host_port(origin: &str) -> Option<(String, u16)> {
    let (scheme, authority) = origin.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    host_port(authority, default_port)
}

/// The default port of `origin`'s scheme (80 unless `https`).
fn default_port(origin: &str) -> u16 {
    if origin.to_ascii_lowercase().starts_with("https://") {
        443
    } else {
        80
    }
}

/// The 403 for a cross-site request from `origin` (if known).
fn refused(why: &str, origin: Option<&str>) -> ApiError {
    let from = match origin {
        Some(o) if o.len() <= ECHO_LIMIT => format!(" (Origin {o:?})"),
        _ => String::new(),
    };
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_site",
        format!(
            "refused: {why}{from}; only this server's own page, or a configured CORS origin, \
             may send this request"
        ),
    )
}

/// Allow or refuse a request (see the [module documentation](self)).
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
/// use spe_server_example::origin::{AllowedOrigins, check};
///
/// let uri = Uri::from_static("/api/predictions/generate");
/// let mut headers = HeaderMap::new();
/// headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
/// headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
/// let none = AllowedOrigins::default();
/// assert!(check(&Method::POST, &uri, &headers, &none).is_ok());
/// headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
/// assert_eq!(check(&Method::POST, &uri, &headers, &none).unwrap_err().status(), 403);
/// assert!(check(&Method::GET, &uri, &headers, &none).is_ok());
/// let cors = AllowedOrigins::new(&["https://evil.example".to_owned()]);
/// assert!(check(&Method::POST, &uri, &headers, &cors).is_ok());
/// ```
pub fn check(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    allowed: &AllowedOrigins,
) -> Result<(), ApiError> {
    if is_safe(method) {
        return Ok(());
    }
    // A header that is not text cannot be an origin this server knows.
    let origin = match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => None,
        Some(Ok(origin)) => Some(origin.trim()),
        Some(Err(_)) => return Err(refused("an Origin that is not text", None)),
    };
    if origin.is_some_and(|o| allowed.contains(o)) {
        return Ok(());
    }
    let site = headers
        .get(SEC_FETCH_SITE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return Err(refused("a cross-site request", origin));
    }
    let Some(origin) = origin else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    let own = host.and_then(|h| host_port(h.trim(), default_port(origin)));
    match (origin_host_port(origin), own) {
        (Some(from), Some(own)) if from == own => Ok(()),
        _ => Err(refused(
            "a request from another origin than this server's",
            Some(origin),
        )),
    }
}

/// The middleware: [`check`] each request against `allowed`.
pub async fn refuse_cross_site(
    State(allowed): State<Arc<AllowedOrigins>>,
    request: Request,
    next: Next,
) -> Response {
    match check(request.method(), request.uri(), request.headers(), &allowed) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::warn!(
                origin = request
                    .headers()
                    .get(header::ORIGIN)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
                "cross-site request refused"
            );
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn post(pairs: &[(&'static str, &'static str)], allowed: &AllowedOrigins) -> Result<(), u16> {
        let uri = Uri::from_static("/api/predictions/generate");
        check(&Method::POST, &uri, &headers(pairs), allowed).map_err(|e| e.status().as_u16())
    }

    #[test]
    fn the_servers_own_page_passes() {
        let none = AllowedOrigins::default();
        for pairs in [
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ][..],
            &[
                ("host", "localhost:8080"),
                ("origin", "http://LOCALHOST:8080"),
            ],
            &[("host", "[::1]:8080"), ("origin", "http://[::1]:8080")],
            &[("host", "dash.example"), ("origin", "http://dash.example")],
            &[
                ("host", "dash.example:80"),
                ("origin", "http://dash.example"),
            ],
            &[("host", "dash.example"), ("origin", "https://dash.example")],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
            // Not a browser: nothing to check.
            &[("host", "127.0.0.1:8080")],
            &[],
            &[("sec-fetch-site", "none")],
        ] {
            assert_eq!(post(pairs, &none), Ok(()), "{pairs:?}");
        }
    }

    #[test]
    fn other_origins_and_cross_site_requests_are_refused() {
        let none = AllowedOrigins::default();
        for pairs in [
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ][..],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
                ("content-type", "text/plain"),
            ],
            &[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
            &[("host", "127.0.0.1:8080"), ("sec-fetch-site", "Cross-Site")],
            // Same host, another port: another origin.
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8081"),
            ],
            &[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1")],
            &[
                ("host", "localhost:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            &[("host", "127.0.0.1:8080"), ("origin", "null")],
            &[("host", "127.0.0.1:8080"), ("origin", "file://")],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080/x"),
            ],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://u@127.0.0.1:8080"),
            ],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:80x"),
            ],
            // Nothing to compare with.
            &[("origin", "http://127.0.0.1:8080")],
        ] {
            assert_eq!(post(pairs, &none), Err(403), "{pairs:?}");
        }
    }

    #[test]
    fn a_configured_cors_origin_passes_even_cross_site() {
        let cors = AllowedOrigins::new(&["https://Ops.example.com/".to_owned()]);
        let pairs = [
            ("host", "spe.internal:8080"),
            ("origin", "https://ops.example.com"),
            ("sec-fetch-site", "cross-site"),
        ];
        assert_eq!(post(&pairs, &cors), Ok(()));
        let pairs = [
            ("host", "spe.internal:8080"),
            ("origin", "https://ops.example.com.evil.example"),
        ];
        assert_eq!(post(&pairs, &cors), Err(403));
    }

    #[test]
    fn safe_methods_are_not_checked() {
        let uri = Uri::from_static("/api/dashboard");
        let evil = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ]);
        let none = AllowedOrigins::default();
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(check(&method, &uri, &evil, &none).is_ok(), "{method}");
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(check(&method, &uri, &evil, &none).is_err(), "{method}");
        }
    }

    #[test]
    fn the_message_names_the_origin_when_short() {
        let uri = Uri::from_static("/api/predictions/generate");
        let e = check(
            &Method::POST,
            &uri,
            &headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ]),
            &AllowedOrigins::default(),
        )
        .expect_err("refused");
        assert_eq!(e.code(), "cross_site");
        assert!(
            e.message().contains("(Origin \"https://evil.example\")"),
            "{}",
            e.message()
        );
    }
}
