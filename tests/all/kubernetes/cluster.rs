//! Where the Kubernetes scenarios run: the project's Kubernetes API test
//! server, or a real cluster named by `WEFT_TEST_KUBECONFIG`. A scenario
//! sees the same [`Cluster`] either way: a kubeconfig for the agent, an
//! admin client to look at and act on Jobs and pods, the namespace, the
//! image, the store Secret and a store the pods can reach.
//!
//! A real cluster is set up by whoever runs the tests:
//!
//! - `WEFT_TEST_KUBECONFIG` (and `WEFT_TEST_CONTEXT`, optional): an identity
//!   that may manage Jobs, pods, ServiceAccounts, Roles and RoleBindings in
//!   the namespace, and evict pods;
//! - `WEFT_TEST_NAMESPACE` (default `weft-test`): an existing namespace;
//! - `WEFT_TEST_IMAGE`: the weft image of the version under test (see the
//!   `Dockerfile`), pullable by the cluster;
//! - `WEFT_TEST_STORE`: a bucket URL both this machine and the pods reach
//!   (each test uses a fresh prefix under it), with its credentials in this
//!   process's environment and `WEFT_TEST_STORE_OPTIONS` (a JSON object of
//!   store options, optional);
//! - `WEFT_TEST_STORE_SECRET` (default `weft-store`): a Secret in the
//!   namespace holding the store credentials for pods.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use weft_kube_apiserver::{Config, DenyRule, TestApiServer};

use crate::agent::AgentProcess;
use crate::store::Backend;
use crate::weft_path;

/// Which cluster a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The project's Kubernetes API test server, started for the test.
    TestServer,
    /// The cluster `WEFT_TEST_KUBECONFIG` names.
    Real,
}

/// A verb on a resource that the agent's identity lacks.
pub(crate) type Forbidden = (&'static str, &'static str);

pub(crate) struct Cluster {
    pub target: Target,
    /// Admin access, to look at and act on what the agent made.
    pub client: kube::Client,
    pub namespace: String,
    pub image: String,
    pub store_secret: String,
    /// The agent's kubeconfig.
    kubeconfig: PathBuf,
    context: Option<String>,
    /// A restricted identity made for this test on a real cluster, removed
    /// by [`Cluster::tear_down`].
    restricted: Option<String>,
    _server: Option<TestApiServer>,
    _dir: tempfile::TempDir,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> String {
    env(name).unwrap_or_else(|| panic!("{name} must be set to run the Kubernetes scenarios on a real cluster"))
}

/// A unique, DNS-safe suffix.
fn suffix() -> String {
    weft::model::new_id().to_lowercase()[20..].to_owned()
}

impl Cluster {
    /// Starts (test server) or connects to (real) a cluster whose agent
    /// identity lacks `forbidden`, if given.
    pub(crate) async fn start(target: Target, forbidden: Option<Forbidden>) -> Cluster {
        match target {
            Target::TestServer => Self::test_server(forbidden).await,
            Target::Real => Self::real(forbidden).await,
        }
    }

    async fn test_server(forbidden: Option<Forbidden>) -> Cluster {
        const NAMESPACE: &str = "flows";
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::default();
        config.command_rewrites.insert("weft".into(), weft_path());
        config.termination_grace_period = Some(Duration::from_secs(2));
        // An image is pulled once per node (and on every start with
        // `imagePullPolicy: Always`), and that takes a while.
        config.pull_delay = Duration::from_millis(1500);
        config.extra_env.insert("WEFT_HOME".into(), dir.path().join("pod-home").display().to_string());
        config.deny = forbidden.into_iter().map(|(verb, resource)| DenyRule::new(verb, resource, NAMESPACE)).collect();
        let server = TestApiServer::start(config).await.expect("test API server");
        server.put_secret(NAMESPACE, "weft-store", &[("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")]);
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, NAMESPACE).expect("kubeconfig");
        let client = client(&kubeconfig, None).await;
        Cluster {
            target: Target::TestServer,
            client,
            namespace: NAMESPACE.into(),
            image: "weft:test".into(),
            store_secret: "weft-store".into(),
            kubeconfig,
            context: None,
            restricted: None,
            _server: Some(server),
            _dir: dir,
        }
    }

    async fn real(forbidden: Option<Forbidden>) -> Cluster {
        let admin = PathBuf::from(required("WEFT_TEST_KUBECONFIG"));
        let context = env("WEFT_TEST_CONTEXT");
        let client = client(&admin, context.as_deref()).await;
        let mut cluster = Cluster {
            target: Target::Real,
            client,
            namespace: env("WEFT_TEST_NAMESPACE").unwrap_or_else(|| "weft-test".into()),
            image: required("WEFT_TEST_IMAGE"),
            store_secret: env("WEFT_TEST_STORE_SECRET").unwrap_or_else(|| "weft-store".into()),
            kubeconfig: admin,
            context,
            restricted: None,
            _server: None,
            _dir: tempfile::tempdir().expect("tempdir"),
        };
        if let Some(forbidden) = forbidden {
            cluster.restrict(forbidden).await;
        }
        cluster
    }

    /// Gives the agent an identity of its own on a real cluster: a
    /// ServiceAccount bound to the agent's Role minus `forbidden`, and a
    /// kubeconfig with a token for it.
    async fn restrict(&mut self, (verb, resource): Forbidden) {
        let name = format!("weft-test-agent-{}", suffix());
        let ns = self.namespace.clone();
        let post = PostParams::default();
        let rules: Vec<Value> = weft::agent::kubernetes::AGENT_RULES
            .iter()
            .map(|(group, res, verbs)| {
                let verbs: Vec<&str> = verbs.iter().copied().filter(|v| !(*res == resource && *v == verb)).collect();
                json!({"apiGroups": [group], "resources": [res], "verbs": verbs})
            })
            .collect();
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns);
        accounts
            .create(&post, &serde_json::from_value(json!({"metadata": {"name": name}})).expect("account"))
            .await
            .expect("ServiceAccount");
        let roles: Api<Role> = Api::namespaced(self.client.clone(), &ns);
        roles
            .create(&post, &serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules})).expect("role"))
            .await
            .expect("Role");
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), &ns);
        let binding = json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        });
        bindings.create(&post, &serde_json::from_value(binding).expect("binding")).await.expect("RoleBinding");
        self.restricted = Some(name.clone());

        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}});
        let answer: Value = accounts.create_subresource("token", &name, &post, &request).await.expect("TokenRequest");
        let token = answer["status"]["token"].as_str().expect("a token").to_owned();

        let admin = Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let context_name = self.context.clone().or(admin.current_context.clone()).expect("a context");
        let context = admin
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.clone())
            .expect("the context");
        let cluster = admin.clusters.iter().find(|c| c.name == context.cluster).expect("its cluster");
        let kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [serde_json::to_value(cluster).expect("JSON")],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": context.cluster, "user": name, "namespace": ns}}],
            "current-context": name,
        });
        let path = self._dir.path().join("agent-kubeconfig");
        std::fs::write(&path, serde_json::to_vec(&kubeconfig).expect("JSON")).expect("write kubeconfig");
        self.kubeconfig = path;
        self.context = None;
    }

    /// Removes what [`Cluster::start`] made on a real cluster.
    pub(crate) async fn tear_down(&self) {
        let Some(name) = &self.restricted else { return };
        let params = DeleteParams::default();
        let _ = Api::<RoleBinding>::namespaced(self.client.clone(), &self.namespace).delete(name, &params).await;
        let _ = Api::<Role>::namespaced(self.client.clone(), &self.namespace).delete(name, &params).await;
        let _ = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.namespace).delete(name, &params).await;
    }

    /// The test server, when the cluster is one: what a test can only see or
    /// do there (its request log, an outage).
    pub(crate) fn server(&self) -> Option<&TestApiServer> {
        self._server.as_ref()
    }

    /// A fresh store the pods can reach.
    pub(crate) fn store(&self) -> Backend {
        match self.target {
            Target::TestServer => Backend::s3(),
            Target::Real => {
                let options: serde_json::Map<String, Value> = env("WEFT_TEST_STORE_OPTIONS")
                    .map(|text| serde_json::from_str(&text).expect("WEFT_TEST_STORE_OPTIONS is a JSON object"))
                    .unwrap_or_default();
                let options = options
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                    .collect();
                Backend::remote(&format!("{}/{}", required("WEFT_TEST_STORE").trim_end_matches('/'), suffix()), options)
            }
        }
    }

    /// A Kubernetes agent on `backend`, named `name`.
    pub(crate) fn agent_named(&self, backend: &Backend, name: &str, extra: &[&str]) -> AgentProcess {
        let kubeconfig = self.kubeconfig.display().to_string();
        let namespace = format!("namespace={}", self.namespace);
        let secret = format!("store_secret={}", self.store_secret);
        let image = format!("image={}", self.image);
        let mut args = vec![
            "--infra",
            "kubernetes",
            "--kubeconfig",
            &kubeconfig,
            "--job-variable",
            &namespace,
            "--job-variable",
            &secret,
            "--job-variable",
            &image,
        ];
        if let Some(context) = &self.context {
            args.extend(["--context", context]);
        }
        args.extend(extra);
        AgentProcess::start(backend, name, &args)
    }

    pub(crate) fn agent(&self, backend: &Backend, extra: &[&str]) -> AgentProcess {
        self.agent_named(backend, "kube", extra)
    }

    pub(crate) fn jobs_api(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub(crate) fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The Jobs of these runs, as JSON.
    pub(crate) async fn jobs_of(&self, run_ids: &[String]) -> Vec<Value> {
        list(&self.jobs_api(), run_ids).await
    }

    /// The pods of these runs, as JSON.
    pub(crate) async fn pods_of(&self, run_ids: &[String]) -> Vec<Value> {
        list(&self.pods_api(), run_ids).await
    }

    /// The name of a run's pod once it runs.
    pub(crate) async fn running_pod(&self, run_id: &str) -> String {
        let ids = [run_id.to_owned()];
        let mut name = None;
        crate::agent::wait_for("a running pod", Duration::from_secs(120), async || {
            name = self
                .pods_of(&ids)
                .await
                .into_iter()
                .find(|p| p["status"]["phase"] == "Running")
                .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned));
            name.is_some()
        })
        .await;
        name.expect("a pod")
    }
}

async fn client(kubeconfig: &std::path::Path, context: Option<&str>) -> kube::Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let options = KubeConfigOptions { context: context.map(str::to_owned), ..KubeConfigOptions::default() };
    let config = kube::Config::from_custom_kubeconfig(file, &options).await.expect("client config");
    kube::Client::try_from(config).expect("client")
}

async fn list<K>(api: &Api<K>, run_ids: &[String]) -> Vec<Value>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let selector = weft::agent::kubernetes::RUN_ID_LABEL;
    let objects = api.list(&ListParams::default().labels(selector)).await.expect("list");
    objects
        .items
        .iter()
        .map(|o| serde_json::to_value(o).expect("JSON"))
        .filter(|o| o["metadata"]["labels"][selector].as_str().is_some_and(|id| run_ids.iter().any(|r| r == id)))
        .collect()
}
