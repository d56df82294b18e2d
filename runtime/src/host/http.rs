//! `wasi:http` outgoing requests, allowed only to the hosts the run is
//! granted (`sandbox.hosts`: `name:port`, by name or by the addresses the
//! name had when the run started). Anything else is refused with
//! `HTTP-request-denied`, which the guest reads, and a line in the run's log
//! that names the host and the fix. TLS is done here, by the host.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::{RunLog, RunState};
use crate::sandbox::Grants;

/// The HTTP side of one store: its context and the policy hook.
pub(crate) struct HttpState {
    ctx: WasiHttpCtx,
    policy: HttpPolicy,
}

impl HttpState {
    pub(crate) fn new(grants: &Grants, log: Arc<RunLog>) -> Self {
        HttpState {
            ctx: WasiHttpCtx::new(),
            policy: HttpPolicy {
                hosts: grants.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                addresses: grants.connect.clone(),
                log,
            },
        }
    }
}

struct HttpPolicy {
    /// Granted `name:port`, lowercase.
    hosts: HashSet<String>,
    /// The addresses granted names resolved to.
    addresses: HashSet<SocketAddr>,
    log: Arc<RunLog>,
}

impl HttpPolicy {
    /// The request's `host:port` (the port from the scheme when not given),
    /// and whether it is granted.
    fn check(&self, uri: &http::Uri) -> (String, bool) {
        let Some(authority) = uri.authority() else { return (String::from("(no host)"), false) };
        let port =
            authority.port_u16().unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) { 443 } else { 80 });
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let granted = self.hosts.contains(&target)
            || target.parse::<SocketAddr>().is_ok_and(|address| self.addresses.contains(&address));
        (target, granted)
    }
}

type Response = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Response {
        let (target, granted) = self.check(request.uri());
        if !granted {
            self.log.denied(&format!("HTTP request to `{target}`"), self.hosts.iter().map(String::as_str), &target);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http.ctx, table: &mut self.table, hooks: &mut self.http.policy }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DiscardLogs;

    fn policy(hosts: &[&str], addresses: &[&str]) -> HttpPolicy {
        HttpPolicy {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            addresses: addresses.iter().map(|a| a.parse().expect("address")).collect(),
            log: Arc::new(RunLog::new(Arc::new(DiscardLogs), "run".into(), u64::MAX)),
        }
    }

    fn check(policy: &HttpPolicy, uri: &str) -> (String, bool) {
        policy.check(&uri.parse().expect("uri"))
    }

    #[test]
    fn only_granted_hosts_and_their_addresses_pass() {
        let policy = policy(&["api.example.com:443", "localhost:8080"], &["127.0.0.1:8080"]);
        assert_eq!(check(&policy, "https://API.example.com/v1"), ("api.example.com:443".into(), true));
        assert_eq!(check(&policy, "http://api.example.com/v1"), ("api.example.com:80".into(), false));
        assert_eq!(check(&policy, "http://localhost:8080/"), ("localhost:8080".into(), true));
        assert_eq!(check(&policy, "http://127.0.0.1:8080/"), ("127.0.0.1:8080".into(), true));
        assert_eq!(check(&policy, "http://127.0.0.1:8081/"), ("127.0.0.1:8081".into(), false));
        assert_eq!(check(&policy, "https://evil.example.com/"), ("evil.example.com:443".into(), false));
        assert!(!check(&policy, "http://[::1]:8080/").1);
    }
}
