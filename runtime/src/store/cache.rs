//! Task results cached across flow runs and machines:
//! `cache/<sha256 of key>.json`, written create-only so that of two runs
//! racing on one key both finish and the first result is kept. An expired
//! entry is deleted and written anew (if two writers race there, one
//! create wins).

use crate::model::{CacheFuture, CachedResult, Digest, ResultCache};

use super::Store;

fn path(key: &str) -> String {
    format!("cache/{}.json", Digest::of(key.as_bytes()).hex())
}

impl Store {
    /// The entry under `key`, fresh or not; `None` when there is none or it
    /// cannot be read.
    async fn cached(&self, key: &str) -> Option<CachedResult> {
        match self.get_json::<CachedResult>(&path(key)).await {
            // A hash collision between keys would return another key's
            // result: the stored key is checked.
            Ok(Some(entry)) if entry.key == key => Some(entry),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(store = self.url(), error = %e, "cannot read a cached task result; running the task");
                None
            }
        }
    }
}

impl ResultCache for Store {
    fn get<'a>(&'a self, key: &'a str) -> CacheFuture<'a, Option<CachedResult>> {
        Box::pin(async move { self.cached(key).await.filter(|e| e.is_fresh(std::time::SystemTime::now())) })
    }

    fn put(&self, entry: CachedResult) -> CacheFuture<'_, ()> {
        Box::pin(async move {
            let path = path(&entry.key);
            let Ok(json) = serde_json::to_vec(&entry) else { return };
            let write = async {
                if self.create(&path, json.clone().into()).await? {
                    return Ok(());
                }
                // One is there: keep it while it is fresh, replace it once
                // it has expired.
                match self.cached(&entry.key).await {
                    Some(existing) if existing.is_fresh(std::time::SystemTime::now()) => Ok(()),
                    _ => {
                        self.delete(&path).await?;
                        self.create(&path, json.into()).await.map(|_| ())
                    }
                }
            };
            if let Err(e) = write.await {
                tracing::warn!(store = self.url(), error = %e, "cannot cache a task result; later runs will run it again");
            }
        })
    }
}
