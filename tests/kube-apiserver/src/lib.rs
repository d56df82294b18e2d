//! A Kubernetes API server **test double**: real HTTP/1.1 on 127.0.0.1,
//! in-process (tokio), stateful, serving the subset of the API that weft's
//! Kubernetes agent uses, with the real server's semantics and wording, so
//! that tests run the agent against it with an unmodified kube-rs client.
//! It is test code, not a Kubernetes implementation.
//!
//! # What it implements
//!
//! - batch/v1 **Jobs**: create, get, list (namespaced and all namespaces),
//!   delete with `propagationPolicy` (Background and Foreground delete the
//!   pods, Orphan and the batch/v1 default keep them, with the real
//!   warning), watch. Defaulting (selector, `job-name`/`controller-uid`
//!   labels, pod-spec defaults) and the validation a client is likely to
//!   trip (names, labels, containers, restartPolicy) with 422 Invalid.
//! - core/v1 **Pods**: get, list, delete (graceful), watch, and
//!   `pods/{name}/log` (`container`, `tailLines`, `limitBytes`, `follow`).
//! - core/v1 **Events**: get, list, watch, with field selectors such as
//!   `involvedObject.name=X`; recorded as the job controller, scheduler and
//!   kubelet record them.
//! - core/v1 **Secrets**: create (with `stringData`), get, list, delete.
//! - `/version`, `/api`, `/apis`, `/api/v1`, `/apis/batch`,
//!   `/apis/batch/v1`, and aggregated discovery.
//! - Semantics: uid, creationTimestamp, one global resourceVersion; 404,
//!   409, 422, 403 and 410 as `Status` objects worded as the real server
//!   words them; label selectors (`=`, `!=`, `in`, `notin`, exists, `!`);
//!   watches with history, bookmarks, `sendInitialEvents`, timeouts and the
//!   in-stream 410 `ERROR`; configurable denials; a request log.
//! - A simulated job controller and kubelet: each Job gets a pod, which is
//!   scheduled and run as a **local process** (the first container's
//!   `command` + `args`, with `env`/`envFrom` from Secrets), whose exit
//!   sets the pod's and the Job's status as the real controllers do
//!   (`backoffLimit`, `activeDeadlineSeconds`, `ttlSecondsAfterFinished`).
//!   Test hooks ([`Behaviour`]) make pods stay pending, pull slowly, fail to
//!   pull, be OOM-killed or evicted; [`TestApiServer::preempt`] preempts.
//!
//! # What it does not
//!
//! No TLS or authentication, no update/patch/apply, no dry run, no other
//! resources (Namespaces, ConfigMaps, Nodes...), no paging (`limit` is
//! ignored, lists are whole), no `resourceVersion` semantics on get/list
//! (always the latest), no admission, no images: only the first container
//! runs, on this machine, without isolation, and `restartPolicy: OnFailure`
//! behaves like `Never`. See the README for the details.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_kube_apiserver::Error> {
//! use weft_kube_apiserver::{Config, TestApiServer};
//! let server = TestApiServer::start(Config::default()).await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"), "flows")?;
//! println!("serving on {}", server.url());
//! # Ok(())
//! # }
//! ```

mod behaviour;
mod config;
mod controller;
mod discovery;
mod error;
mod events;
mod http;
mod kubelet;
mod logs;
mod resource;
mod selector;
mod server;
mod status;
mod store;
mod util;
mod validation;
mod watch;

pub use behaviour::{BEHAVIOUR_ANNOTATION, Behaviour, UnknownBehaviour};
pub use config::{Config, DenyRule};
pub use error::Error;
pub use resource::Resource;
pub use server::{RequestRecord, TestApiServer};
