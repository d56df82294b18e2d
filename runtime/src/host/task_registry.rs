//! The task components a flow run may call: each compiled once per run
//! (lazily, on the first call, by a loader the engine provides) and
//! instantiated afresh for every task run.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::OnceCell;

use super::TaskPre;
use crate::model::{Digest, TaskPolicy};

/// A compiled task component, ready to instantiate any number of times.
pub struct TaskComponent {
    pub(crate) pre: TaskPre,
    digest: Digest,
    source: String,
}

impl std::fmt::Debug for TaskComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskComponent").field("digest", &self.digest).field("source", &self.source).finish()
    }
}

impl TaskComponent {
    pub(crate) fn new(pre: TaskPre, digest: Digest, source: String) -> Self {
        TaskComponent { pre, digest, source }
    }

    /// The component's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Where the component came from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Fetches and compiles one task component; called at most once per run,
/// on the task's first call. Its error is returned to every call of the task.
pub type TaskLoader =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<TaskComponent, String>> + Send>> + Send + Sync>;

/// The task components a flow run may call, by the name the flow calls them.
#[derive(Default)]
pub struct TaskComponents {
    entries: BTreeMap<String, TaskEntry>,
}

impl std::fmt::Debug for TaskComponents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

pub(crate) struct TaskEntry {
    pub(crate) policy: TaskPolicy,
    pub(crate) digest: Digest,
    loader: TaskLoader,
    loaded: OnceCell<Result<Arc<TaskComponent>, String>>,
}

impl TaskEntry {
    /// The compiled component, loading it on first use.
    pub(crate) async fn component(&self) -> Result<Arc<TaskComponent>, String> {
        self.loaded.get_or_init(|| async { (self.loader)().await.map(Arc::new) }).await.clone()
    }
}

impl TaskComponents {
    /// No task components.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a task component under `name`, with the digest it must
    /// have and a loader that fetches and compiles it when first called.
    pub fn insert(&mut self, name: impl Into<String>, digest: Digest, policy: TaskPolicy, loader: TaskLoader) {
        self.entries.insert(name.into(), TaskEntry { policy, digest, loader, loaded: OnceCell::new() });
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether none are registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&TaskEntry> {
        self.entries.get(name)
    }
}
