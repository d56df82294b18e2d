//! Task components: compiled once per run (lazily, on the first call) and
//! instantiated afresh for every task run.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::host::{RunState, TaskPre};
use crate::model::{Digest, TaskPolicy};

/// A compiled task component, ready to instantiate any number of times.
pub struct TaskComponent {
    pub(crate) pre: TaskPre<RunState>,
    digest: Digest,
    source: String,
}

impl std::fmt::Debug for TaskComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskComponent").field("digest", &self.digest).field("source", &self.source).finish()
    }
}

impl TaskComponent {
    pub(super) fn new(pre: TaskPre<RunState>, digest: Digest, source: String) -> Self {
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

    /// Registers a task component from its bytes (whose digest is
    /// `digest`, already verified), compiled by `engine` when first called.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_bytes(
        &mut self,
        name: impl Into<String>,
        engine: &super::Engine,
        bytes: Arc<[u8]>,
        digest: Digest,
        source: String,
        policy: TaskPolicy,
        cache_dir: Option<std::path::PathBuf>,
    ) {
        let loader = compile_later(
            engine,
            move || {
                let bytes = bytes.clone();
                Box::pin(async move { Ok(bytes) })
            },
            digest.clone(),
            source,
            cache_dir,
        );
        self.insert(name, digest, policy, loader);
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

/// Where a task component's bytes come from: memory, or a store.
pub type TaskBytes = Pin<Box<dyn Future<Output = Result<Arc<[u8]>, String>> + Send>>;

/// A loader that gets the bytes from `fetch`, then compiles them with
/// `engine` on a blocking thread (compiling a large component takes seconds).
pub fn compile_later(
    engine: &super::Engine,
    fetch: impl Fn() -> TaskBytes + Send + Sync + 'static,
    digest: Digest,
    source: String,
    cache_dir: Option<std::path::PathBuf>,
) -> TaskLoader {
    let engine = engine.clone();
    Box::new(move || {
        let bytes = fetch();
        let (engine, source, digest, cache_dir) = (engine.clone(), source.clone(), digest.clone(), cache_dir.clone());
        Box::pin(async move {
            let bytes = bytes.await?;
            let named = source.clone();
            tokio::task::spawn_blocking(move || {
                engine.load_task(&bytes, &digest, &source, cache_dir.as_deref()).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("compiling `{named}` failed: {e}"))?
        })
    })
}
