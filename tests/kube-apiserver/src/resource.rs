//! The four resources served (batch/v1 Jobs, core/v1 Pods, Events and
//! Secrets): their names, groups, kinds and supported field selectors.

use serde_json::Value;

/// A resource type this server stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// batch/v1 `jobs`.
    Jobs,
    /// core/v1 `pods`.
    Pods,
    /// core/v1 `events`.
    Events,
    /// core/v1 `secrets`.
    Secrets,
}

impl Resource {
    /// Every resource, in discovery order.
    pub(crate) const ALL: [Resource; 4] = [Resource::Jobs, Resource::Pods, Resource::Events, Resource::Secrets];

    /// The plural name in paths: `jobs`.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Jobs => "jobs",
            Resource::Pods => "pods",
            Resource::Events => "events",
            Resource::Secrets => "secrets",
        }
    }

    pub(crate) fn singular(self) -> &'static str {
        match self {
            Resource::Jobs => "job",
            Resource::Pods => "pod",
            Resource::Events => "event",
            Resource::Secrets => "secret",
        }
    }

    /// The API group: `batch` or `""` for core.
    pub fn group(self) -> &'static str {
        match self {
            Resource::Jobs => "batch",
            _ => "",
        }
    }

    /// `apiVersion` of its objects.
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::Jobs => "batch/v1",
            _ => "v1",
        }
    }

    /// `kind` of its objects.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Jobs => "Job",
            Resource::Pods => "Pod",
            Resource::Events => "Event",
            Resource::Secrets => "Secret",
        }
    }

    pub(crate) fn from_plural(plural: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.plural() == plural)
    }

    /// `jobs.batch`, `pods`: how messages name the resource.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// `Job.batch`, `Pod`: how Invalid messages name the kind.
    pub(crate) fn qualified_kind(self) -> String {
        match self.group() {
            "" => self.kind().to_owned(),
            group => format!("{}.{group}", self.kind()),
        }
    }

    pub(crate) fn short_names(self) -> &'static [&'static str] {
        match self {
            Resource::Pods => &["po"],
            Resource::Events => &["ev"],
            _ => &[],
        }
    }

    /// Verbs served, as discovery lists them.
    pub(crate) fn verbs(self) -> &'static [&'static str] {
        match self {
            Resource::Jobs | Resource::Secrets => &["create", "delete", "get", "list", "watch"],
            Resource::Pods => &["delete", "get", "list", "watch"],
            Resource::Events => &["get", "list", "watch"],
        }
    }

    /// The value of a supported field selector label, `None` when the real
    /// server would answer "field label not supported".
    pub(crate) fn field_value(self, object: &Value, field: &str) -> Option<String> {
        let text = |path: &[&str]| -> String {
            let mut value = object;
            for key in path {
                match value.get(key) {
                    Some(inner) => value = inner,
                    None => return String::new(),
                }
            }
            match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            }
        };
        match field {
            "metadata.name" => return Some(text(&["metadata", "name"])),
            "metadata.namespace" => return Some(text(&["metadata", "namespace"])),
            _ => {}
        }
        let value = match (self, field) {
            (Resource::Jobs, "status.successful") => {
                let succeeded = text(&["status", "succeeded"]);
                if succeeded.is_empty() { "0".to_owned() } else { succeeded }
            }
            (Resource::Pods, "spec.nodeName") => text(&["spec", "nodeName"]),
            (Resource::Pods, "spec.restartPolicy") => text(&["spec", "restartPolicy"]),
            (Resource::Pods, "spec.schedulerName") => text(&["spec", "schedulerName"]),
            (Resource::Pods, "spec.serviceAccountName") => text(&["spec", "serviceAccountName"]),
            (Resource::Pods, "spec.hostNetwork") => {
                let host = text(&["spec", "hostNetwork"]);
                if host.is_empty() { "false".to_owned() } else { host }
            }
            (Resource::Pods, "status.phase") => text(&["status", "phase"]),
            (Resource::Pods, "status.podIP") => text(&["status", "podIP"]),
            (Resource::Pods, "status.nominatedNodeName") => text(&["status", "nominatedNodeName"]),
            (Resource::Events, "source") => text(&["source", "component"]),
            (Resource::Events, "reason") => text(&["reason"]),
            (Resource::Events, "type") => text(&["type"]),
            (Resource::Events, "reportingComponent") => text(&["reportingComponent"]),
            (Resource::Events, field) if field.starts_with("involvedObject.") => {
                let key = &field["involvedObject.".len()..];
                if !["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"].contains(&key) {
                    return None;
                }
                text(&["involvedObject", key])
            }
            (Resource::Secrets, "type") => text(&["type"]),
            _ => return None,
        };
        Some(value)
    }
}
