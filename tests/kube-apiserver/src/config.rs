//! What a test can tune: the port, the user, denials, watch history and
//! bookmarks, the simulated controllers' timings, and how the kubelet turns a
//! container into a local process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How a [`TestApiServer`](crate::TestApiServer) behaves. Start from
/// [`Config::default`] and change the fields a test cares about.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port to listen on, on 127.0.0.1; 0 lets the system choose (see
    /// [`TestApiServer::port`](crate::TestApiServer::port)).
    pub port: u16,
    /// The user named in 403 messages, as the real server names the caller.
    pub user: String,
    /// Requests to deny with 403 Forbidden; everything else is allowed.
    pub deny: Vec<DenyRule>,
    /// How many watch events are kept; a watch from an older
    /// resourceVersion gets a 410 Gone `ERROR` event.
    pub watch_history: usize,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How long a watch lasts when the request gives no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Job controller: time between a Job's creation (or its pod's failure)
    /// and the creation of its pod.
    pub pod_create_delay: Duration,
    /// Job controller: extra time before a replacement pod, after a failure
    /// that `spec.backoffLimit` still allows.
    pub pod_backoff: Duration,
    /// Scheduler: time between a pod's creation and its binding to the node.
    pub schedule_delay: Duration,
    /// Kubelet: time an image pull takes (`slow-pull:N` replaces it). A
    /// pull happens when the image is not in the node's cache yet, or
    /// always with `imagePullPolicy: Always`.
    pub pull_delay: Duration,
    /// Kubelet: time between `ErrImagePull` and `ImagePullBackOff`.
    pub image_pull_backoff_delay: Duration,
    /// Kubelet: when set, replaces every pod's
    /// `terminationGracePeriodSeconds` (30 s by default), so that a test
    /// waits less between SIGTERM and SIGKILL. A `gracePeriodSeconds` given
    /// in a delete request still wins.
    pub termination_grace_period: Option<Duration>,
    /// Kubelet: rewrites a container's executable (`command[0]`, or
    /// `args[0]` when there is no command) before running it, e.g.
    /// `weft` and `/usr/local/bin/weft` to the locally built binary.
    pub command_rewrites: BTreeMap<String, PathBuf>,
    /// Kubelet: environment given to every container process on top of
    /// `PATH` and `HOME` (the container's own `env` and `envFrom` win).
    pub extra_env: BTreeMap<String, String>,
    /// The one node's name, as pods' `spec.nodeName` shows it.
    pub node_name: String,
    /// Scheduler: labels of the one node on top of the ones every node has
    /// (`kubernetes.io/hostname=<node_name>`, `kubernetes.io/os=linux`,
    /// `kubernetes.io/arch=amd64`); a pod whose `spec.nodeSelector` they do
    /// not satisfy is never scheduled, as on a real cluster with no such
    /// node.
    pub node_labels: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            user: "system:serviceaccount:weft:weft-agent".to_owned(),
            deny: Vec::new(),
            watch_history: 1000,
            bookmark_interval: Duration::from_secs(1),
            default_watch_timeout: Duration::from_secs(1800),
            pod_create_delay: Duration::from_millis(20),
            pod_backoff: Duration::from_millis(100),
            schedule_delay: Duration::from_millis(20),
            pull_delay: Duration::from_millis(20),
            image_pull_backoff_delay: Duration::from_millis(100),
            termination_grace_period: None,
            command_rewrites: BTreeMap::new(),
            extra_env: BTreeMap::new(),
            node_name: "weft-test-node".to_owned(),
            node_labels: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Every label of the one node: the well-known ones, then
    /// [`node_labels`](Self::node_labels).
    pub(crate) fn all_node_labels(&self) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = [
            ("kubernetes.io/hostname", self.node_name.as_str()),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        labels.extend(self.node_labels.clone());
        labels
    }
}

/// One authorization rule that denies: a request matches when each field
/// matches (`"*"` matches anything; `namespace: None` matches every
/// namespace and cluster-wide requests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenyRule {
    /// `get`, `list`, `watch`, `create` or `delete`, or `"*"`.
    pub verb: String,
    /// `jobs`, `pods`, `pods/log`, `pods/eviction`, `events` or `secrets`,
    /// or `"*"`.
    pub resource: String,
    /// The namespace, or `None` for all.
    pub namespace: Option<String>,
}

impl DenyRule {
    /// Denies `verb` on `resource` in `namespace`.
    pub fn new(verb: &str, resource: &str, namespace: &str) -> Self {
        DenyRule { verb: verb.to_owned(), resource: resource.to_owned(), namespace: Some(namespace.to_owned()) }
    }

    /// Denies `verb` on `resource` everywhere.
    pub fn everywhere(verb: &str, resource: &str) -> Self {
        DenyRule { verb: verb.to_owned(), resource: resource.to_owned(), namespace: None }
    }

    pub(crate) fn matches(&self, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
        (self.verb == "*" || self.verb == verb)
            && (self.resource == "*" || self.resource == resource)
            && match &self.namespace {
                None => true,
                Some(ns) => namespace == Some(ns.as_str()),
            }
    }
}
