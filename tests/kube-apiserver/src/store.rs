//! The object store: every object by resource, namespace and name, the one
//! global resourceVersion counter, and the bounded history that watches
//! read from. Every write goes through here, so every write bumps the
//! counter, lands in the history and wakes the watches.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::resource::Resource;
use crate::util;

/// Where an object lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjectKey {
    pub resource: Resource,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(resource: Resource, namespace: &str, name: &str) -> Self {
        ObjectKey { resource, namespace: namespace.to_owned(), name: name.to_owned() }
    }
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches replay it.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub kind: EventType,
    pub resource: Resource,
    pub namespace: String,
    pub object: Value,
}

/// Objects, counter and history.
pub(crate) struct Store {
    rv: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: VecDeque<Change>,
    history_limit: usize,
    /// The latest resourceVersion, for watches to wait on.
    rv_tx: watch::Sender<u64>,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Store {
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            rv_tx: watch::Sender::new(0),
        }
    }

    /// The latest resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.rv_tx.subscribe()
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of `resource`, in `namespace` or in all, in key order.
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v)
            .collect()
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
        self.trim_history();
    }

    fn trim_history(&mut self) {
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
    }

    fn record(&mut self, kind: EventType, key: &ObjectKey, object: Value) {
        self.history.push_back(Change {
            rv: self.rv,
            kind,
            resource: key.resource,
            namespace: key.namespace.clone(),
            object,
        });
        self.trim_history();
        self.rv_tx.send_replace(self.rv);
    }

    fn bump(&mut self, object: &mut Value) {
        self.rv += 1;
        util::metadata(object).insert("resourceVersion".into(), json!(self.rv.to_string()));
    }

    /// Stores a new object: sets apiVersion, kind, namespace, uid (unless
    /// the caller chose it), creationTimestamp and resourceVersion; ADDED. The caller has checked
    /// that the name is free.
    pub fn create(&mut self, key: &ObjectKey, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(key.resource.api_version()));
            map.insert("kind".into(), json!(key.resource.kind()));
        }
        let meta = util::metadata(&mut object);
        meta.insert("name".into(), json!(key.name));
        meta.insert("namespace".into(), json!(key.namespace));
        if !meta.get("uid").is_some_and(Value::is_string) {
            meta.insert("uid".into(), json!(util::uid()));
        }
        meta.insert("creationTimestamp".into(), json!(util::now()));
        self.bump(&mut object);
        self.objects.insert(key.clone(), object.clone());
        self.record(EventType::Added, key, object.clone());
        object
    }

    /// Changes an object with `change`; MODIFIED if anything changed.
    /// Returns the object after the change, `None` if there is none.
    pub fn modify(&mut self, key: &ObjectKey, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let before = self.objects.get(key)?.clone();
        let mut after = before.clone();
        change(&mut after);
        if after == before {
            return Some(after);
        }
        self.bump(&mut after);
        self.objects.insert(key.clone(), after.clone());
        self.record(EventType::Modified, key, after.clone());
        Some(after)
    }

    /// Removes an object; DELETED with the object at a new resourceVersion,
    /// as the real server reports deletions.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.bump(&mut object);
        self.record(EventType::Deleted, key, object.clone());
        Some(object)
    }

    /// Changes after `rv`, or `Err(oldest)` when some of them are no longer
    /// kept: `oldest` is the resourceVersion a watch may still start from.
    pub fn changes_since(&self, rv: u64) -> Result<impl Iterator<Item = &Change>, u64> {
        if let Some(first) = self.history.front() {
            let oldest = first.rv - 1;
            if rv < oldest {
                return Err(oldest);
            }
        }
        Ok(self.history.iter().filter(move |c| c.rv > rv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_from_before_the_history_is_told_the_oldest_version() {
        let mut store = Store::new(2);
        for name in ["a", "b", "c", "d"] {
            store.create(&ObjectKey::new(Resource::Secrets, "ns", name), json!({}));
        }
        assert_eq!(store.rv(), 4);
        assert_eq!(store.changes_since(1).err(), Some(2));
        let kept: Vec<u64> = store.changes_since(2).map(|c| c.map(|c| c.rv).collect()).unwrap_or_default();
        assert_eq!(kept, vec![3, 4]);
    }
}
