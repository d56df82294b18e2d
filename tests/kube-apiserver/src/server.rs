//! [`TestApiServer`]: starts the listener, owns the shared state and the
//! background tasks (connections, watches, controllers, kubelets), and
//! offers the test-side methods: URL and kubeconfig, denials, the request
//! log, hooks, and pod logs and processes.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::behaviour::Behaviour;
use crate::config::{Config, DenyRule};
use crate::controller::JobRuntime;
use crate::error::Error;
use crate::events::{self, Severity};
use crate::kubelet::{self, PodCommand};
use crate::logs::LogBuffer;
use crate::resource::Resource;
use crate::store::{ObjectKey, Store};

/// One request as it reached the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it arrived.
    pub at: SystemTime,
    /// When it arrived, from the server's start.
    pub since_start: Duration,
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
}

/// `(namespace, name)` of a pod.
pub(crate) type PodKey = (String, String);

/// The simulated kubelet's handle on one pod.
pub(crate) struct PodHandle {
    pub commands: mpsc::UnboundedSender<PodCommand>,
    /// The process group of the running container, while it runs.
    pub pgid: Option<i32>,
}

/// Everything behind the one lock.
pub(crate) struct State {
    pub store: Store,
    pub deny: Vec<DenyRule>,
    pub requests: Vec<RequestRecord>,
    pub pods: HashMap<PodKey, PodHandle>,
    /// Logs outlive their pods, so a test can read them afterwards.
    pub logs: HashMap<PodKey, Arc<LogBuffer>>,
    /// Job controller state, by Job uid.
    pub jobs: HashMap<String, JobRuntime>,
    /// The node's image cache: normalized references of the images it has
    /// pulled (`docker.io/library/busybox:1.36`).
    pub images: BTreeSet<String>,
}

/// What every task shares.
pub(crate) struct Shared {
    pub config: Config,
    pub port: u16,
    state: Mutex<State>,
    /// Bumped by [`TestApiServer::close_watches`]; open watches end.
    pub watch_epoch: watch::Sender<u64>,
    /// True during an [outage](TestApiServer::outage): every connection is
    /// dropped and new ones are closed at once.
    pub down: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    /// Working directories of container processes that name none.
    pub scratch: tempfile::TempDir,
    pub started: Instant,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `task` until it ends or the server stops.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }
}

/// A Kubernetes API server test double on 127.0.0.1; see the crate docs.
/// Dropping it stops the server, its tasks and every container process.
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl TestApiServer {
    /// Binds 127.0.0.1:`config.port` and starts serving. Must be called
    /// inside a tokio runtime, which then runs the server.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        let listener = TcpListener::bind(bind).await.map_err(|source| Error::Bind { addr: bind, source })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind { addr: bind, source })?;
        let scratch = tempfile::Builder::new()
            .prefix("weft-kube-apiserver-")
            .tempdir()
            .map_err(|source| Error::Scratch { source })?;
        let state = State {
            store: Store::new(config.watch_history),
            deny: config.deny.clone(),
            requests: Vec::new(),
            pods: HashMap::new(),
            logs: HashMap::new(),
            jobs: HashMap::new(),
            images: BTreeSet::new(),
        };
        let shared = Arc::new(Shared {
            config,
            port: addr.port(),
            state: Mutex::new(state),
            watch_epoch: watch::Sender::new(0),
            down: watch::Sender::new(false),
            tasks: Mutex::new(JoinSet::new()),
            scratch,
            started: Instant::now(),
        });
        shared.spawn(crate::http::serve(shared.clone(), listener));
        Ok(TestApiServer { shared, addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on (the chosen one when configured with 0).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose current context points at this server, with
    /// `namespace` as the default namespace and no credentials.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: weft-test\n  cluster:\n    server: {url}\ncontexts:\n- name: weft-test\n  context:\n    cluster: weft-test\n    user: weft-test\n    namespace: {namespace}\ncurrent-context: weft-test\nusers:\n- name: weft-test\n  user: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) to `path`.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig(namespace))
            .map_err(|source| Error::WriteKubeconfig { path: path.to_owned(), source })
    }

    /// Replaces the denial rules.
    pub fn set_denials(&self, rules: Vec<DenyRule>) {
        self.shared.lock().deny = rules;
    }

    /// Adds one denial rule.
    pub fn deny(&self, rule: DenyRule) {
        self.shared.lock().deny.push(rule);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// The most requests that arrived within any `window` (e.g. one
    /// second), among those accepted by `filter`: a client's peak rate.
    pub fn max_requests_in(&self, window: Duration, filter: impl Fn(&RequestRecord) -> bool) -> usize {
        let times: Vec<Duration> =
            self.shared.lock().requests.iter().filter(|r| filter(r)).map(|r| r.since_start).collect();
        let mut start = 0;
        let mut most = 0;
        for (end, at) in times.iter().enumerate() {
            while start <= end && at.saturating_sub(times[start]) >= window {
                start += 1;
            }
            most = most.max(end + 1 - start);
        }
        most
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Changes what happens next to a pod (see [`Behaviour`]): before it
    /// runs, the new behaviour replaces the Job's; while it runs,
    /// `oom-after`/`evict-after` start counting now; `normal` releases a
    /// `pending`, `image-pull-error` or `invalid-image` pod.
    pub fn trigger(&self, namespace: &str, pod: &str, behaviour: Behaviour) -> Result<(), Error> {
        let state = self.shared.lock();
        let handle = state
            .pods
            .get(&(namespace.to_owned(), pod.to_owned()))
            .ok_or_else(|| Error::NoSuchPod { namespace: namespace.to_owned(), name: pod.to_owned() })?;
        handle
            .commands
            .send(PodCommand::Trigger(behaviour))
            .map_err(|_| Error::NoSuchPod { namespace: namespace.to_owned(), name: pod.to_owned() })
    }

    /// Preempts a pod as the scheduler does for a higher-priority one: a
    /// `DisruptionTarget` condition (reason `PreemptionByScheduler`), a
    /// `Preempted` event, then a graceful delete.
    pub fn preempt(&self, namespace: &str, pod: &str) -> Result<(), Error> {
        let mut state = self.shared.lock();
        let no_such = || Error::NoSuchPod { namespace: namespace.to_owned(), name: pod.to_owned() };
        let modified = kubelet::add_disruption_target(
            &self.shared,
            &mut state,
            namespace,
            pod,
            "PreemptionByScheduler",
            "default-scheduler: preempting to accommodate a higher priority pod",
        )
        .map_err(|_| no_such())?;
        events::record(
            &mut state.store,
            &modified,
            None,
            Severity::Normal,
            "Preempted",
            "Preempted by pod weft-test/high-priority on node",
            events::SCHEDULER,
        );
        kubelet::delete_pod(&self.shared, &mut state, namespace, pod, None).map(|_| ()).map_err(|_| no_such())
    }

    /// Everything a pod's container wrote to stdout and stderr so far; kept
    /// after the pod is deleted.
    pub fn pod_log(&self, namespace: &str, pod: &str) -> Option<String> {
        let state = self.shared.lock();
        let log = state.logs.get(&(namespace.to_owned(), pod.to_owned()))?;
        Some(String::from_utf8_lossy(&log.contents()).into_owned())
    }

    /// The process id (also its process group) of a pod's running
    /// container.
    pub fn pod_pid(&self, namespace: &str, pod: &str) -> Option<u32> {
        let state = self.shared.lock();
        let pgid = state.pods.get(&(namespace.to_owned(), pod.to_owned()))?.pgid?;
        u32::try_from(pgid).ok()
    }

    /// `(namespace, pod, pid)` of every running container process.
    pub fn running_processes(&self) -> Vec<(String, String, u32)> {
        let state = self.shared.lock();
        let mut running: Vec<_> = state
            .pods
            .iter()
            .filter_map(|((ns, name), h)| Some((ns.clone(), name.clone(), u32::try_from(h.pgid?).ok()?)))
            .collect();
        running.sort();
        running
    }

    /// One stored object, as a GET would return it.
    pub fn object(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        self.shared.lock().store.get(&ObjectKey::new(resource, namespace, name)).cloned()
    }

    /// Stored objects of `resource`, in `namespace` or in all.
    pub fn objects(&self, resource: Resource, namespace: Option<&str>) -> Vec<Value> {
        self.shared.lock().store.list(resource, namespace).into_iter().cloned().collect()
    }

    /// Stores a Secret directly (as `POST .../secrets` would), with
    /// `string_data` as its data.
    pub fn put_secret(&self, namespace: &str, name: &str, string_data: &[(&str, &str)]) {
        use base64::Engine as _;
        let data: serde_json::Map<String, Value> = string_data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(base64::engine::general_purpose::STANDARD.encode(v))))
            .collect();
        let mut state = self.shared.lock();
        let key = ObjectKey::new(Resource::Secrets, namespace, name);
        if state.store.get(&key).is_some() {
            state.store.modify(&key, |secret| {
                if let Some(map) = secret.as_object_mut() {
                    map.insert("data".into(), Value::Object(data.clone()));
                }
            });
        } else {
            state.store.create(&key, json!({"metadata": {}, "type": "Opaque", "data": data}));
        }
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.rv()
    }

    /// Changes how many watch events are kept (dropping older ones now).
    pub fn set_watch_history(&self, events: usize) {
        self.shared.lock().store.set_history_limit(events);
    }

    /// Ends every open watch stream, as an API server restart would; clients
    /// reconnect from their last resourceVersion.
    pub fn close_watches(&self) {
        self.shared.watch_epoch.send_modify(|n| *n += 1);
    }

    /// Takes the server away, as an outage or a restart of every API server
    /// replica does: open connections (watches included) are dropped and
    /// new ones closed unanswered, until [`TestApiServer::restore`]. The
    /// simulated controllers and kubelet go on, so objects change meanwhile.
    pub fn outage(&self) {
        self.shared.down.send_replace(true);
    }

    /// Ends an [outage](TestApiServer::outage): connections are served again.
    pub fn restore(&self) {
        self.shared.down.send_replace(false);
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        let pgids: Vec<i32> = self.shared.lock().pods.values().filter_map(|h| h.pgid).collect();
        for pgid in pgids {
            kubelet::kill_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        self.shared.tasks.lock().unwrap_or_else(PoisonError::into_inner).abort_all();
    }
}
