//! Task results cached beyond one flow run: the entry, and the trait the
//! host reaches the store through (the host does no storage I/O itself).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A cached task result (`cache/<hash of key>.json` in the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedResult {
    /// The cache key, as the task's run gave it.
    pub key: String,
    /// The task that made it.
    pub task: String,
    /// The result, as JSON text.
    pub result: String,
    /// The task run that made it.
    pub task_run_id: String,
    /// When it was made.
    #[serde(with = "super::logs::rfc3339")]
    pub created: SystemTime,
    /// After this, it is not used.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::runs::optional_time")]
    pub expires: Option<SystemTime>,
}

impl CachedResult {
    /// Whether it may be used at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }

    /// When an entry made now with `expiration` expires.
    pub fn expiry(expiration: Option<Duration>) -> Option<SystemTime> {
        expiration.map(|e| SystemTime::now() + e)
    }
}

/// A boxed future, for [`ResultCache`]'s object-safe methods.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where task results are cached across flow runs and machines. Lookups
/// and writes that fail are not errors of the task: a failed lookup is a
/// miss, a failed write is logged by the implementation and forgotten.
pub trait ResultCache: Send + Sync + std::fmt::Debug {
    /// The fresh entry under `key`, if there is one.
    fn get<'a>(&'a self, key: &'a str) -> CacheFuture<'a, Option<CachedResult>>;

    /// Keeps `entry` under its key unless a fresh one is there already
    /// (the first writer wins; a later one is dropped).
    fn put(&self, entry: CachedResult) -> CacheFuture<'_, ()>;
}
