//! A layer under the Kubernetes client that counts every request it makes
//! (Job creations, log reads, deletions, and the lists and watches of
//! kube-runtime) by verb and answer, for the agent's `/metrics`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, Response, Uri};

use crate::model::metric_names::KUBE_REQUESTS;

/// Wraps a client service in [`MeteredService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Metered;

impl<S> tower::Layer<S> for Metered {
    type Service = MeteredService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MeteredService { inner }
    }
}

/// Counts each request as it is answered.
#[derive(Debug, Clone)]
pub struct MeteredService<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for MeteredService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let verb = verb(request.method(), request.uri());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let status = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            metrics::counter!(KUBE_REQUESTS, "verb" => verb, "status" => status).increment(1);
            result
        })
    }
}

/// The Kubernetes verb of a request, as RBAC names them.
fn verb(method: &Method, uri: &Uri) -> &'static str {
    let query = uri.query().unwrap_or_default();
    match *method {
        Method::GET if query.split('&').any(|p| p == "watch=true" || p == "watch=1") => "watch",
        // A collection's path ends with the resource; an object's with its name.
        Method::GET if uri.path().rsplit('/').next().is_some_and(|last| ["jobs", "pods", "events"].contains(&last)) => {
            "list"
        }
        Method::GET => "get",
        Method::POST => "create",
        Method::DELETE => "delete",
        Method::PATCH => "patch",
        Method::PUT => "update",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_by_their_rbac_verb() {
        let uri = |text: &str| text.parse::<Uri>().expect("uri");
        assert_eq!(verb(&Method::GET, &uri("/apis/batch/v1/namespaces/f/jobs?labelSelector=x&watch=true")), "watch");
        assert_eq!(verb(&Method::GET, &uri("/apis/batch/v1/namespaces/f/jobs?labelSelector=x")), "list");
        assert_eq!(verb(&Method::GET, &uri("/api/v1/namespaces/f/pods/p-1/log?tailLines=20")), "get");
        assert_eq!(verb(&Method::POST, &uri("/apis/batch/v1/namespaces/f/jobs")), "create");
        assert_eq!(verb(&Method::DELETE, &uri("/apis/batch/v1/namespaces/f/jobs/j")), "delete");
    }
}
