//! Task components compiled on demand: the loaders that fetch a task
//! component's bytes and compile it on a blocking thread, for the host's
//! [`TaskComponents`] registry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::host::{TaskComponent, TaskComponents};
use crate::model::{Digest, TaskPolicy};

use super::TaskLoader;

impl TaskComponents {
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
}

/// Where a task component's bytes come from: memory, or a store.
pub type TaskBytes = Pin<Box<dyn Future<Output = Result<Arc<[u8]>, String>> + Send>>;

/// A loader that gets the bytes from `fetch`, then compiles them with
/// [`compile_task`].
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
        Box::pin(async move { compile_task(engine, bytes.await?, digest, source, cache_dir).await })
    })
}

/// Compiles a task component on a blocking thread (compiling a large
/// component takes seconds), its code cached in `cache_dir`.
pub async fn compile_task(
    engine: super::Engine,
    bytes: impl AsRef<[u8]> + Send + 'static,
    digest: Digest,
    source: String,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<TaskComponent, String> {
    let named = source.clone();
    tokio::task::spawn_blocking(move || {
        engine.load_task(bytes.as_ref(), &digest, &source, cache_dir.as_deref()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("compiling `{named}` failed: {e}"))?
}
