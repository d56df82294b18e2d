//! The manifests that install an agent in a cluster: a ServiceAccount, a
//! Role with only the verbs the agent needs and its RoleBinding (per
//! namespace the agent runs Jobs in), and a Deployment of one agent.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::{Value, json};

/// The agent's name in the cluster: its ServiceAccount, Deployment and
/// `--name` (so that a restarted pod adopts its runs).
pub const AGENT_NAME: &str = "weft-agent";

/// The port the agent serves `/metrics`, `/healthz` and `/readyz` on.
pub const METRICS_PORT: u16 = 9090;

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The agent's namespace.
    pub namespace: String,
    /// The store URL.
    pub store: String,
    /// The store's options (an endpoint, a region), without credentials.
    pub store_options: Vec<(String, String)>,
    /// The weft image.
    pub image: String,
    /// Include the Role and RoleBinding.
    pub rbac: bool,
    /// Namespaces the agent creates Jobs in (default: its own).
    pub job_namespaces: Vec<String>,
    /// A Secret holding the store's credentials, for the agent and the runs.
    pub store_secret: Option<String>,
    /// The work pools the agent serves (default: the `kubernetes` pool).
    pub pools: Vec<String>,
}

/// The verbs the agent needs, resource by resource.
pub const AGENT_RULES: &[(&str, &str, &[&str])] = &[
    ("batch", "jobs", &["create", "get", "list", "watch", "delete"]),
    ("", "pods", &["get", "list", "watch"]),
    ("", "pods/log", &["get"]),
    ("", "events", &["get", "list", "watch"]),
];

fn checked<T: serde::de::DeserializeOwned + serde::Serialize>(value: Value) -> Result<String, String> {
    let typed: T = serde_json::from_value(value).map_err(|e| format!("an install manifest is not valid: {e}"))?;
    serde_saphyr::to_string(&typed).map_err(|e| format!("cannot write an install manifest: {e}"))
}

/// The manifests, as YAML documents separated by `---`, in apply order.
pub fn install_manifests(options: &InstallOptions) -> Result<String, String> {
    let labels = json!({"app.kubernetes.io/name": AGENT_NAME, "app.kubernetes.io/part-of": "weft"});
    let mut documents = Vec::new();
    documents.push(checked::<ServiceAccount>(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": AGENT_NAME, "namespace": options.namespace, "labels": labels},
    }))?);
    if options.rbac {
        let namespaces = if options.job_namespaces.is_empty() {
            vec![options.namespace.clone()]
        } else {
            options.job_namespaces.clone()
        };
        let rules: Vec<Value> = AGENT_RULES
            .iter()
            .map(|(group, resource, verbs)| json!({"apiGroups": [group], "resources": [resource], "verbs": verbs}))
            .collect();
        for namespace in namespaces {
            documents.push(checked::<Role>(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": AGENT_NAME, "namespace": namespace, "labels": labels},
                "rules": rules,
            }))?);
            documents.push(checked::<RoleBinding>(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": AGENT_NAME, "namespace": namespace, "labels": labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": AGENT_NAME},
                "subjects": [{"kind": "ServiceAccount", "name": AGENT_NAME, "namespace": options.namespace}],
            }))?);
        }
    }
    let job_namespace = options.job_namespaces.first().unwrap_or(&options.namespace);
    // An agent of pools has a name (and a Deployment) of its own, so that
    // agents of several pools can live in one namespace.
    let agent_name = if options.pools.is_empty() {
        AGENT_NAME.to_owned()
    } else {
        format!("{AGENT_NAME}-{}", options.pools.join("-"))
    };
    let mut selector = json!({"app.kubernetes.io/name": AGENT_NAME});
    let mut pod_labels = labels.clone();
    if !options.pools.is_empty() {
        selector["app.kubernetes.io/instance"] = json!(agent_name);
        pod_labels["app.kubernetes.io/instance"] = json!(agent_name);
    }
    let mut args = vec![
        "agent".to_owned(),
        "--infra".into(),
        "kubernetes".into(),
        "--name".into(),
        // Claims are recorded under the agent's name: agents of other pools
        // (in other clusters) must not take each other's for their own.
        agent_name.clone(),
        "--log-format".into(),
        "json".into(),
        "--metrics-listen".into(),
        format!("0.0.0.0:{METRICS_PORT}"),
        "--job-variable".into(),
        format!("namespace={job_namespace}"),
        "--job-variable".into(),
        format!("image={}", options.image),
    ];
    for pool in &options.pools {
        crate::model::check_pool_name(pool)?;
        args.extend(["--pool".into(), pool.clone()]);
    }
    let mut env = vec![json!({"name": "WEFT_STORE", "value": options.store})];
    if let Some((key, _)) = options.store_options.iter().find(|(key, _)| super::infra::is_credential(key)) {
        return Err(format!(
            "store option `{key}` is a credential, and manifests carry none: put it in a Secret (as the \
             variable the store reads, such as AWS_SECRET_ACCESS_KEY) and pass `--store-secret NAME`"
        ));
    }
    if !options.store_options.is_empty() {
        let map: std::collections::BTreeMap<&str, &str> =
            options.store_options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let json = serde_json::to_string(&map).map_err(|e| format!("cannot write the store options: {e}"))?;
        env.push(json!({"name": "WEFT_STORE_OPTIONS", "value": json}));
    }
    let mut env_from = Vec::new();
    if let Some(secret) = &options.store_secret {
        args.extend(["--job-variable".into(), format!("store_secret={secret}")]);
        env_from.push(json!({"secretRef": {"name": secret}}));
    }
    documents.push(checked::<Deployment>(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": agent_name, "namespace": options.namespace, "labels": pod_labels},
        "spec": {
            // One agent per name: a second replica would share its claims.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": METRICS_PORT.to_string()},
                },
                "spec": {
                    "serviceAccountName": AGENT_NAME,
                    "terminationGracePeriodSeconds": 60,
                    "containers": [{
                        "name": "agent",
                        "image": options.image,
                        "command": ["weft"],
                        "args": args,
                        "env": env,
                        "envFrom": env_from,
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        // Alive while the agent loop turns; ready while the
                        // store and the API server answer.
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "metrics"},
                            "initialDelaySeconds": 10, "periodSeconds": 20, "failureThreshold": 3,
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/readyz", "port": "metrics"},
                            "periodSeconds": 10, "timeoutSeconds": 12, "failureThreshold": 3,
                        },
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true},
                    }],
                },
            },
        },
    }))?);
    Ok(documents.join("---\n"))
}
