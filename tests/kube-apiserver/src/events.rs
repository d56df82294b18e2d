//! core/v1 Events as the real controllers and kubelet record them: one
//! object per (object, reason, message), whose `count` grows on repeats.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::resource::Resource;
use crate::store::{ObjectKey, Store};
use crate::util;

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Normal,
    Warning,
}

/// Who reports an event: `job-controller`, `default-scheduler`, `kubelet`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    pub component: &'static str,
    pub host: Option<&'a str>,
}

pub(crate) const JOB_CONTROLLER: Source<'static> = Source { component: "job-controller", host: None };
pub(crate) const SCHEDULER: Source<'static> = Source { component: "default-scheduler", host: None };

/// Records an event about `involved` (a stored object); `field_path`
/// names a container (`spec.containers{main}`) for container events.
pub(crate) fn record(
    store: &mut Store,
    involved: &Value,
    field_path: Option<&str>,
    severity: Severity,
    reason: &str,
    message: &str,
    source: Source<'_>,
) {
    let namespace = util::str_at(involved, "/metadata/namespace").unwrap_or("default").to_owned();
    let name = util::str_at(involved, "/metadata/name").unwrap_or_default().to_owned();
    let uid = util::str_at(involved, "/metadata/uid").unwrap_or_default().to_owned();
    let now = util::now();
    let same = store
        .list(Resource::Events, Some(&namespace))
        .into_iter()
        .find(|e| {
            util::str_at(e, "/involvedObject/uid") == Some(uid.as_str())
                && util::str_at(e, "/reason") == Some(reason)
                && util::str_at(e, "/message") == Some(message)
        })
        .and_then(|e| util::str_at(e, "/metadata/name"))
        .map(str::to_owned);
    if let Some(existing) = same {
        store.modify(&ObjectKey::new(Resource::Events, &namespace, &existing), |event| {
            let count = event.get("count").and_then(Value::as_i64).unwrap_or(1);
            if let Some(map) = event.as_object_mut() {
                map.insert("count".into(), json!(count + 1));
                map.insert("lastTimestamp".into(), json!(now));
            }
        });
        return;
    }
    // Named as the real recorder names events (`<object>.<unix nanos in
    // hex>`), so that a list, sorted by name, is in time order.
    let mut nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let event_name = loop {
        let candidate = format!("{name}.{nanos:x}");
        if store.get(&ObjectKey::new(Resource::Events, &namespace, &candidate)).is_none() {
            break candidate;
        }
        nanos += 1;
    };
    let mut involved_object = json!({
        "kind": involved.get("kind").cloned().unwrap_or(Value::Null),
        "namespace": namespace,
        "name": name,
        "uid": uid,
        "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
        "resourceVersion": util::str_at(involved, "/metadata/resourceVersion").unwrap_or_default(),
    });
    if let (Some(path), Some(map)) = (field_path, involved_object.as_object_mut()) {
        map.insert("fieldPath".into(), json!(path));
    }
    let mut source_object = json!({"component": source.component});
    if let (Some(host), Some(map)) = (source.host, source_object.as_object_mut()) {
        map.insert("host".into(), json!(host));
    }
    let event = json!({
        "metadata": {},
        "involvedObject": involved_object,
        "reason": reason,
        "message": message,
        "source": source_object,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": match severity { Severity::Normal => "Normal", Severity::Warning => "Warning" },
        "eventTime": null,
        "reportingComponent": source.component,
        "reportingInstance": source.host.unwrap_or_default(),
    });
    store.create(&ObjectKey::new(Resource::Events, &namespace, &event_name), event);
}
