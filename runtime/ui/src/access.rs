//! Who may use the UI, and how an action is known to come from it.
//!
//! - **The token.** Given one, every route answers 401 without it, the API
//!   and the live streams included. Scripts send `Authorization: Bearer
//!   <token>`; a browser opens any page once with `?token=<token>`, and gets
//!   a cookie (HttpOnly, SameSite=Strict) that holds a MAC of the token, not
//!   the token itself.
//! - **CSRF.** Every form carries a token derived from the UI token (or, with
//!   none, from a secret made at start), so several UIs with one token
//!   accept each other's forms. JSON API actions need `Content-Type:
//!   application/json`, which no cross-site form can send. A POST whose
//!   `Origin` is another site is refused.
//! - **`--read-only`** refuses every POST.
//!
//! Every answer also carries a Content-Security-Policy that allows only the
//! UI's own scripts and styles.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Ui;

type HmacSha256 = Hmac<Sha256>;

/// The cookie a browser keeps once it has shown the token.
pub const COOKIE: &str = "weft_ui";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The UI's secrets, derived once.
pub struct Access {
    /// Keyed by the token; `None` serves everyone.
    token: Option<Keys>,
    csrf: String,
}

struct Keys {
    token: String,
    cookie: String,
}

fn mac(key: &[u8], message: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `given` is `expected`, in time that does not depend on where they
/// differ.
fn same(given: &str, expected: &str) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(b"weft-ui compare") else { return false };
    mac.update(given.as_bytes());
    mac.verify_slice(&hex::decode(mac_of(expected)).unwrap_or_default()).is_ok()
}

fn mac_of(text: &str) -> String {
    mac(b"weft-ui compare", text.as_bytes())
}

impl Access {
    /// Access for a UI with this token, or none.
    pub fn new(token: Option<&str>) -> Self {
        match token.map(str::trim) {
            Some(token) => Access {
                csrf: mac(token.as_bytes(), b"weft-ui csrf"),
                token: Some(Keys { token: token.to_owned(), cookie: mac(token.as_bytes(), b"weft-ui cookie") }),
            },
            None => {
                let mut secret = [0u8; 32];
                // Without randomness the CSRF token would be guessable: a
                // fixed one is still refused by the Origin check and
                // SameSite, so this is not fatal.
                if getrandom::fill(&mut secret).is_err() {
                    tracing::warn!("no randomness for the CSRF secret; the Origin check still applies");
                }
                Access { csrf: mac(&secret, b"weft-ui csrf"), token: None }
            }
        }
    }

    /// The token forms carry.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's CSRF token is this UI's.
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|given| same(given, &self.csrf))
    }

    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(keys) = &self.token else { return true };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same(given.trim(), &keys.token));
        bearer || cookie(headers, COOKIE).is_some_and(|given| same(given, &keys.cookie))
    }
}

/// A cookie's value from the request's headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Checks the token on every request, and what a POST must carry.
pub async fn guard(State(ui): State<Arc<Ui>>, request: Request, next: Next) -> Response {
    let mut response = check(&ui, request, next).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // An address (and a `?token=` in it) never leaves in a Referer to
    // another site. Not `no-referrer`: with it, browsers send `Origin: null`
    // on the UI's own forms.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

async fn check(ui: &Ui, request: Request, next: Next) -> Response {
    if !ui.access.allows(request.headers()) {
        if let Some(keys) = &ui.access.token
            && request.method() == Method::GET
            && let Some((given, rest)) = token_in_query(request.uri().query())
            && same(&given, &keys.token)
        {
            let location = if rest.is_empty() {
                request.uri().path().to_owned()
            } else {
                format!("{}?{rest}", request.uri().path())
            };
            let set = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", keys.cookie);
            return (StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::SET_COOKIE, set)]).into_response();
        }
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"weft\""), (header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "401: this weft UI needs its token. Open it once with ?token=<token> in the address, or send \
             `Authorization: Bearer <token>`.\n",
        )
            .into_response();
    }
    if request.method() == Method::POST {
        if ui.read_only {
            return refuse(
                StatusCode::FORBIDDEN,
                "this weft UI is read-only (`weft ui --read-only`): run the action with the weft command instead",
            );
        }
        if !same_origin(request.headers()) {
            return refuse(StatusCode::FORBIDDEN, "the request came from another site's page: refused");
        }
    }
    next.run(request).await
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}: {message}\n", status.as_u16()))
        .into_response()
}

/// Whether a request's `Origin`, when it has one, is the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

/// The `token` of a query string, and the rest of it.
fn token_in_query(query: Option<&str>) -> Option<(String, String)> {
    let mut token = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query?.as_bytes()) {
        if key == "token" {
            token = Some(value.into_owned());
        } else {
            rest.append_pair(&key, &value);
        }
    }
    Some((token?, rest.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_checked_whole_and_the_query_keeps_its_other_fields() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert_eq!(
            token_in_query(Some("state=Failed&token=s%3Dcret&limit=5")),
            Some(("s=cret".to_owned(), "state=Failed&limit=5".to_owned()))
        );
        assert_eq!(token_in_query(Some("state=Failed")), None);
    }

    #[test]
    fn the_csrf_token_follows_the_ui_token() {
        let a = Access::new(Some("one"));
        assert_eq!(a.csrf(), Access::new(Some("one")).csrf());
        assert_ne!(a.csrf(), Access::new(Some("two")).csrf());
        assert!(a.csrf_ok(Some(a.csrf())));
        assert!(!a.csrf_ok(None));
        assert_ne!(Access::new(None).csrf(), Access::new(None).csrf());
    }
}
