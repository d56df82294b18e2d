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
//!   labels, pod-spec defaults such as `imagePullPolicy`) and the checks a
//!   client is likely to trip: resource quantities that do not parse (400,
//!   as decoding fails on a real server), and 422 Invalid for names,
//!   labels, containers, `imagePullPolicy`, negative quantities and
//!   `restartPolicy`.
//! - core/v1 **Pods**: get, list, delete (graceful), watch,
//!   `pods/{name}/log` (`container`, `tailLines`, `limitBytes`, `follow`)
//!   and the **eviction** subresource (`POST pods/{name}/eviction`, a
//!   policy/v1 `Eviction`, as `Api::<Pod>::evict` sends it).
//! - core/v1 **Events**: get, list, watch, with field selectors such as
//!   `involvedObject.name=X`; recorded as the job controller, scheduler and
//!   kubelet record them.
//! - core/v1 **Secrets**: create (with `stringData`), get, list, delete.
//! - `/version`, `/api`, `/apis`, `/api/v1`, `/apis/batch`,
//!   `/apis/batch/v1`, and aggregated discovery, with the subresources.
//! - Semantics: uid, creationTimestamp, one global resourceVersion; 404,
//!   409, 422, 403 and 410 as `Status` objects worded as the real server
//!   words them; label selectors (`=`, `!=`, `in`, `notin`, exists, `!`);
//!   watches with history, bookmarks, `sendInitialEvents`, timeouts and the
//!   in-stream 410 `ERROR`; configurable denials; a request log; outages
//!   (every connection dropped until restored) while the controllers go on.
//! - A simulated job controller, scheduler and kubelet on one node: each
//!   Job gets a pod, which is scheduled (if its `nodeSelector` matches the
//!   node's labels), gets its image (parsed, cached per node, pulled per
//!   `imagePullPolicy`) and runs as a **local process** (the first
//!   container's `command` + `args`, with `env`/`envFrom` from Secrets),
//!   OOM-killed past its memory limit, whose exit sets the pod's and the
//!   Job's status as the real controllers do (`backoffLimit`,
//!   `activeDeadlineSeconds`, `ttlSecondsAfterFinished`).
//!
//! # Real-world triggers
//!
//! Failures come from the inputs that cause them on a real cluster, with
//! the real wording, so that one end-to-end test runs unchanged against
//! this server and against a cluster:
//!
//! | input | what the pod shows |
//! | --- | --- |
//! | an image that does not parse (`Weft:Bad`, `bad image`) | waiting `InvalidImageName`, `Failed to apply default image tag "Weft:Bad": couldn't parse image name "Weft:Bad": invalid reference format: repository name (library/Weft) must be lowercase`; Warning `InspectFailed` |
//! | an image from a registry under `.invalid` (`registry.invalid/weft/weft:missing`), which never resolves | `Pulling`, then waiting `ErrImagePull` (`failed to pull and unpack image ...: dial tcp: lookup registry.invalid: no such host`), then `ImagePullBackOff`, for ever; Warning `Failed`, `BackOff` |
//! | `imagePullPolicy: Never` and an image the node has not pulled | waiting `ErrImageNeverPull`, `Container image "X" is not present with pull policy of Never` |
//! | a `nodeSelector` the node's labels do not satisfy | Pending, `PodScheduled=False`, `Unschedulable`, `0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: ...`; Warning `FailedScheduling` |
//! | `resources.limits.memory` below what the process uses | terminated `OOMKilled`, exit code 137 |
//! | `POST pods/{name}/eviction` | `DisruptionTarget` (`EvictionByEvictionAPI`), then a graceful delete |
//!
//! Images pulled once are cached on the node: a pull takes
//! [`Config::pull_delay`] (`Pulling`, then `Successfully pulled image ...`)
//! when the policy is `Always` or the image is not cached, and a cached
//! image under `IfNotPresent` gives `Container image "X" already present on
//! machine`.
//!
//! The test hooks ([`Behaviour`], the `weft.test/behaviour` annotation and
//! [`TestApiServer::trigger`]) remain, as test-only ways to make pods stay
//! pending, pull slowly, fail to pull, be OOM-killed or evicted;
//! [`TestApiServer::preempt`] preempts. A real cluster ignores them.
//!
//! # What it does not
//!
//! No TLS or authentication, no update/patch/apply, no dry run, no other
//! resources (Namespaces, ConfigMaps, Nodes, PodDisruptionBudgets...), no
//! paging (`limit` is ignored, lists are whole), no `resourceVersion`
//! semantics on get/list (always the latest), no admission, no real images
//! (an image is a name, parsed and remembered), no node affinity (only
//! `nodeSelector`): only the first container runs, on this machine,
//! without isolation; its memory is sampled every 20 ms rather than
//! limited by a cgroup; and `restartPolicy: OnFailure` behaves like
//! `Never`. See the README for the details.
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
mod image;
mod kubelet;
mod logs;
mod quantity;
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
