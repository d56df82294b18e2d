//! `/version` and the discovery documents (`/api`, `/apis`, `/api/v1`,
//! `/apis/batch`, `/apis/batch/v1`, and the aggregated v2 form of `/api`
//! and `/apis`), listing only what this server serves, subresources
//! (`pods/log`, `pods/eviction`, `jobs/status`) included.

use serde_json::{Value, json};

use crate::resource::Resource;

/// The media type of aggregated discovery (kube's `run_aggregated`).
pub(crate) const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0",
        "gitCommit": "60a317eadfcb839692a5551a2d4b0f9d2a5b9e0e",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:04Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions(port: u16) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}],
    })
}

fn batch_version() -> Value {
    json!({"groupVersion": "batch/v1", "version": "v1"})
}

pub(crate) fn batch_group() -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "batch",
        "versions": [batch_version()],
        "preferredVersion": batch_version(),
    })
}

pub(crate) fn groups() -> Value {
    let mut group = batch_group();
    if let Some(map) = group.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
}

fn resources_of(group_version: &str) -> Vec<Resource> {
    Resource::ALL.into_iter().filter(|r| r.api_version() == group_version).collect()
}

/// A served subresource, as discovery lists it.
struct Subresource {
    name: &'static str,
    kind: &'static str,
    /// Group and version of `kind` when they are not the resource's
    /// (`pods/eviction` takes a policy/v1 Eviction).
    group_version: Option<(&'static str, &'static str)>,
    verbs: &'static [&'static str],
}

/// The subresources served, in the real server's (alphabetical) order.
fn subresources(resource: Resource) -> &'static [Subresource] {
    match resource {
        Resource::Pods => &[
            Subresource {
                name: "eviction",
                kind: "Eviction",
                group_version: Some(("policy", "v1")),
                verbs: &["create"],
            },
            Subresource { name: "log", kind: "Pod", group_version: None, verbs: &["get"] },
        ],
        Resource::Jobs => &[Subresource { name: "status", kind: "Job", group_version: None, verbs: &["get"] }],
        Resource::Events | Resource::Secrets => &[],
    }
}

/// The APIResourceList of `v1` or `batch/v1`.
pub(crate) fn resource_list(group_version: &str) -> Value {
    let mut resources = Vec::new();
    for resource in resources_of(group_version) {
        resources.push(json!({
            "name": resource.plural(),
            "singularName": resource.singular(),
            "namespaced": true,
            "kind": resource.kind(),
            "verbs": resource.verbs(),
            "shortNames": resource.short_names(),
        }));
        for sub in subresources(resource) {
            let mut entry = json!({
                "name": format!("{}/{}", resource.plural(), sub.name),
                "singularName": "",
                "namespaced": true,
                "kind": sub.kind,
                "verbs": sub.verbs,
            });
            if let (Some((group, version)), Some(map)) = (sub.group_version, entry.as_object_mut()) {
                map.insert("group".into(), json!(group));
                map.insert("version".into(), json!(version));
            }
            resources.push(entry);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn aggregated_group(name: Option<&str>, group_version: &str) -> Value {
    let resources: Vec<Value> = resources_of(group_version)
        .into_iter()
        .map(|r| {
            let subresources: Vec<Value> = subresources(r)
                .iter()
                .map(|sub| {
                    let (group, version) = sub.group_version.unwrap_or(("", ""));
                    json!({
                        "subresource": sub.name,
                        "responseKind": {"group": group, "version": version, "kind": sub.kind},
                        "verbs": sub.verbs,
                    })
                })
                .collect();
            json!({
                "resource": r.plural(),
                "responseKind": {"group": r.group(), "version": "v1", "kind": r.kind()},
                "scope": "Namespaced",
                "singularResource": r.singular(),
                "verbs": r.verbs(),
                "shortNames": r.short_names(),
                "subresources": subresources,
            })
        })
        .collect();
    let metadata = match name {
        Some(name) => json!({"name": name}),
        None => json!({}),
    };
    json!({
        "metadata": metadata,
        "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}],
    })
}

fn aggregated_list(items: Vec<Value>) -> Value {
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

pub(crate) fn core_aggregated() -> Value {
    aggregated_list(vec![aggregated_group(None, "v1")])
}

pub(crate) fn groups_aggregated() -> Value {
    aggregated_list(vec![aggregated_group(Some("batch"), "batch/v1")])
}
