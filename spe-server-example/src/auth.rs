//! Who may call the admin endpoint (`POST /api/predictions/generate`).
//!
//! With a configured token, the request must carry
//! `Authorization: Bearer <token>`; the comparison takes the same time
//! whatever the token sent (both sides are padded to [`MAX_TOKEN_LEN`] and
//! compared with `subtle`'s constant-time equality, lengths included).
//! Without a token, only loopback clients (`127.0.0.0/8`, `::1`) may call
//! it, as the SPEC says, and only under a loopback name: a `Host` header
//! other than `localhost`, a name under `.localhost`, a `127.0.0.0/8`
//! address or `[::1]` (with any port) is refused. A web page whose name an
//! attacker re-points at 127.0.0.1 (DNS rebinding) would otherwise be a
//! same-origin loopback client. This cannot refuse the documented uses
//! (the dashboard at `http://127.0.0.1:8080`, `curl` on the machine);
//! behind a reverse proxy, which makes every client a loopback one, set a
//! token. Reads (`GET`) are not checked: they change nothing.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq as _;

use crate::config::MAX_TOKEN_LEN;
use crate::error::ApiError;

/// The admin check: a bearer token, or loopback only when none is set.
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, header};
/// use spe_server_example::AdminAuth;
///
/// let auth = AdminAuth::new(Some("s3cret".to_owned()));
/// let mut headers = HeaderMap::new();
/// assert_eq!(auth.check(&headers, None).unwrap_err().status(), 401);
/// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
/// assert!(auth.check(&headers, None).is_ok());
///
/// let loopback_only = AdminAuth::new(None);
/// assert!(loopback_only.check(&HeaderMap::new(), Some("127.0.0.1:5000".parse().unwrap())).is_ok());
/// assert_eq!(loopback_only.check(&HeaderMap::new(), Some("192.0.2.7:5000".parse().unwrap())).unwrap_err().status(), 403);
/// ```
#[derive(Clone)]
pub struct AdminAuth {
    /// The token, zero-padded to [`MAX_TOKEN_LEN`], and its length.
    token: Option<(Box<[u8; MAX_TOKEN_LEN]>, usize)>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// `bytes` zero-padded to [`MAX_TOKEN_LEN`]; `None` if longer.
fn padded(bytes: &[u8]) -> Option<Box<[u8; MAX_TOKEN_LEN]>> {
    let mut buffer = Box::new([0u8; MAX_TOKEN_LEN]);
    buffer.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(buffer)
}

impl AdminAuth {
    /// A check against `token` (`None`: loopback clients only). A token
    /// longer than [`MAX_TOKEN_LEN`] bytes (which `--admin-token` refuses)
    /// matches nothing.
    pub fn new(token: Option<String>) -> Self {
        let token = token.map(|t| match padded(t.as_bytes()) {
            Some(buffer) => (buffer, t.len()),
            None => {
                tracing::error!("the admin token is too long: no request will match it");
                (Box::new([0u8; MAX_TOKEN_LEN]), usize::MAX)
            }
        });
        AdminAuth { token }
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Allow or refuse a request with these `headers` from `peer` (`None`
    /// when unknown: then only a token can allow it): 401 for a missing,
    /// malformed or wrong token; 403 for a non-loopback client when no
    /// token is configured.
    pub fn check(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<(), ApiError> {
        let Some((expected, expected_len)) = &self.token else {
            return match peer {
                // `to_canonical`: an IPv4 client of a dual-stack (`[::]`)
                // listener arrives as `::ffff:127.0.0.1`.
                Some(peer) if peer.ip().to_canonical().is_loopback() => loopback_host(headers),
                _ => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "no admin token is configured: only loopback clients may do this",
                )),
            };
        };
        let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("an Authorization: Bearer <token> header is required")
        })?;
        // The scheme is case-insensitive (RFC 9110 §11.1): "bearer" is "Bearer".
        let sent = value
            .as_bytes()
            .split_at_checked(7)
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"Bearer "))
            .map(|(_, token)| token)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be \"Bearer <token>\"")
            })?;
        let Some(sent_padded) = padded(sent) else {
            return Err(ApiError::unauthorized("wrong token"));
        };
        let same_bytes = sent_padded[..].ct_eq(&expected[..]);
        let same_len = (sent.len() as u64).ct_eq(&(*expected_len as u64));
        if bool::from(same_bytes & same_len) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("wrong token"))
        }
    }
}

/// Whether `host` (a `Host` header's value) is a loopback name, with or
/// without a port: `localhost`, `*.localhost` (RFC 6761), `127.0.0.0/8`,
/// `[::1]`.
fn is_loopback_name(host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((address, rest)) if rest.is_empty() || rest.starts_with(':') => address,
            _ => return false,
        },
        None => host.split_once(':').map_or(host.as_str(), |(name, _)| name),
    };
    let name = name.trim_end_matches('.');
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Refuse a request without a token that names this server otherwise than
/// by a loopback name (DNS rebinding); one without `Host` (not a browser's)
/// passes.
fn loopback_host(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(host) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().unwrap_or("");
    if is_loopback_name(host) {
        return Ok(());
    }
    let named = if host.len() <= 128 && !host.is_empty() {
        format!(" (Host {host:?})")
    } else {
        String::new()
    };
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "no admin token is configured: only loopback clients addressing the server by a \
             loopback name (localhost, 127.0.0.1, [::1]) may do this{named}; \
             set an admin token to allow other names"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("a header value"),
        );
        headers
    }

    fn remote() -> Option<SocketAddr> {
        Some(SocketAddr::from(([192, 0, 2, 7], 4000)))
    }

    #[test]
    fn the_right_token_passes_and_nothing_else() {
        let auth = AdminAuth::new(Some("s3cret-token".into()));
        assert!(auth.has_token());
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let ok = format!("{scheme} s3cret-token");
            assert!(auth.check(&bearer(&ok), remote()).is_ok(), "{ok}");
        }
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Bearer S3CRET-TOKEN",
            "Basic s3cret-token",
            "Bearer  s3cret-token",
            "Basic czNjcmV0LXRva2Vu",
            "s3cret-token",
            "Bearer ",
        ] {
            let e = auth.check(&bearer(wrong), remote()).expect_err(wrong);
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED, "{wrong}");
            assert_eq!(e.code(), "unauthorized");
        }
        let e = auth
            .check(&HeaderMap::new(), remote())
            .expect_err("no header");
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        // A token is needed even from loopback once one is configured.
        let local = Some(SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert!(auth.check(&HeaderMap::new(), local).is_err());
        let long = format!("Bearer {}", "x".repeat(MAX_TOKEN_LEN + 1));
        assert!(auth.check(&bearer(&long), remote()).is_err());
    }

    #[test]
    fn without_a_token_only_loopback_passes() {
        let auth = AdminAuth::new(None);
        assert!(!auth.has_token());
        // `[::ffff:127.0.0.1]`: an IPv4 client of a dual-stack listener.
        for ok in [
            "127.0.0.1:1",
            "127.8.9.10:2",
            "[::1]:3",
            "[::ffff:127.0.0.1]:4",
        ] {
            assert!(
                auth.check(&HeaderMap::new(), ok.parse().ok()).is_ok(),
                "{ok}"
            );
        }
        for refused in [
            remote(),
            "[2001:db8::1]:5".parse().ok(),
            "[::ffff:192.0.2.7]:6".parse().ok(),
            None,
        ] {
            let e = auth
                .check(&bearer("Bearer anything"), refused)
                .expect_err("refused");
            assert_eq!(e.status(), StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn without_a_token_only_loopback_names_pass() {
        let auth = AdminAuth::new(None);
        let local = Some(SocketAddr::from(([127, 0, 0, 1], 4000)));
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).expect("a value"));
            headers
        };
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "127.3.4.5:1",
            "localhost:8080",
            "LOCALHOST",
            "localhost.",
            "spe.localhost:8080",
            "[::1]:8080",
            "[::1]",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert!(auth.check(&host(ok), local).is_ok(), "{ok}");
        }
        // No Host at all: not a browser's request.
        assert!(auth.check(&HeaderMap::new(), local).is_ok());
        for refused in [
            "evil.example:8080",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "192.0.2.7:8080",
            "[2001:db8::1]:8080",
            "[::1]x",
            "",
        ] {
            let e = auth.check(&host(refused), local).expect_err(refused);
            assert_eq!(e.status(), StatusCode::FORBIDDEN, "{refused}");
            assert!(e.message().contains("loopback name"), "{}", e.message());
        }
        // With a token, any name: the token is the check.
        let with_token = AdminAuth::new(Some("t".into()));
        let mut headers = host("spe.example.com");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(with_token.check(&headers, remote()).is_ok());
    }

    #[test]
    fn debug_hides_the_token() {
        let auth = AdminAuth::new(Some("s3cret".into()));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    proptest! {
        #[test]
        fn only_the_exact_token_matches(token in "[!-~]{1,64}", sent in "[!-~]{0,64}") {
            let auth = AdminAuth::new(Some(token.clone()));
            let ok = auth.check(&bearer(&format!("Bearer {sent}")), remote()).is_ok();
            prop_assert_eq!(ok, sent == token);
            let right = format!("Bearer {token}");
            prop_assert!(auth.check(&bearer(&right), remote()).is_ok());
        }
    }
}
