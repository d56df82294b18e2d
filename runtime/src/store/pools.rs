//! Work pools in the store, as numbered revisions:
//!
//! ```text
//! pools/<name>/<revision>.json    create-only; the highest is the pool now, or says it was deleted
//! pool-slots/<pool>/<n>           a pool's concurrency slots, as deployments' slots
//! queue-slots/<pool>/<queue>/<n>  a pool queue's concurrency slots
//! ```
//!
//! Every change writes the next revision create-only. Two operators editing
//! one pool at once both read revision N; one creates N+1, and the other's
//! create fails, so it reads N+1 and applies its change again on top: no
//! change is lost. Agents list a pool's folder on each poll and read the
//! pool again only when its latest revision changed. The default pools
//! (`process`, `kubernetes`) are revision 0 until someone edits them.

use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Slot, Store, StoreError};
use crate::model::{DEFAULT_QUEUE, PoolKind, WorkPool, WorkQueue, check_pool_name, check_queue_name};

/// A revision as stored: the pool, or its deletion.
#[derive(Serialize, Deserialize)]
struct Revision {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool: Option<WorkPool>,
    /// When it was written.
    #[serde(with = "crate::model::rfc3339")]
    written: SystemTime,
}

/// Revisions kept per pool; older ones are deleted after a write.
const KEPT_REVISIONS: u64 = 10;

/// How many times a change is applied again on top of another operator's.
const ATTEMPTS: usize = 20;

/// Why a pool could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No pool of that name.
    #[error("there is no work pool `{name}`{}; `weft pool ls` lists them, `weft pool create {name} --type ...` makes it", suggestion(.closest))]
    NotFound {
        /// The name asked for.
        name: String,
        /// The closest existing name.
        closest: Option<String>,
    },
    /// `create` of a pool that exists.
    #[error("work pool `{0}` exists already; `weft pool update {0}` changes it")]
    Exists(String),
    /// What was asked is not allowed.
    #[error("{0}")]
    Refused(String),
    /// Too many other writers at once.
    #[error("work pool `{0}` changed {ATTEMPTS} times while this change was being applied; try again")]
    Contended(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn suggestion(closest: &Option<String>) -> String {
    closest.as_ref().map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default()
}

fn folder(name: &str) -> String {
    format!("pools/{name}")
}

fn revision_path(name: &str, revision: u64) -> String {
    format!("pools/{name}/{revision:012}.json")
}

impl Store {
    /// The latest revision number of a pool: 0 when it has none.
    pub async fn pool_revision(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self
            .list_names(&folder(name))
            .await?
            .iter()
            .filter_map(|n| n.strip_suffix(".json")?.parse().ok())
            .max()
            .unwrap_or(0))
    }

    /// A pool and its revision; the default pools exist at revision 0 until
    /// edited. `None` if there is no such pool.
    pub async fn pool(&self, name: &str) -> Result<Option<(u64, WorkPool)>, StoreError> {
        // The latest revision is read again if it vanished between the
        // listing and the read (pruned after ten newer writes).
        for _ in 0..ATTEMPTS {
            let revision = self.pool_revision(name).await?;
            if let Some(found) = self.pool_at(name, revision).await? {
                return Ok(found);
            }
        }
        Err(StoreError::Corrupt {
            url: self.url().to_owned(),
            path: folder(name),
            reason: format!("its latest revision vanished {ATTEMPTS} times while being read"),
        })
    }

    /// The pool as revision `revision` has it (`Some(None)`: deleted, or
    /// never created); `None` if that revision is gone.
    async fn pool_at(&self, name: &str, revision: u64) -> Result<Option<Option<(u64, WorkPool)>>, StoreError> {
        if revision == 0 {
            return Ok(Some(PoolKind::of_default(name).map(|kind| (0, WorkPool::default_for(kind)))));
        }
        Ok(match self.get_json::<Revision>(&revision_path(name, revision)).await? {
            None => None,
            Some(Revision { pool: Some(pool), .. }) => Some(Some((revision, pool))),
            // Deleted; a default pool comes back as it was.
            Some(Revision { pool: None, .. }) => {
                Some(PoolKind::of_default(name).map(|kind| (revision, WorkPool::default_for(kind))))
            }
        })
    }

    /// A pool, or an error naming the closest existing one.
    pub async fn pool_or_suggest(&self, name: &str) -> Result<(u64, WorkPool), PoolError> {
        if let Some(found) = self.pool(name).await? {
            return Ok(found);
        }
        let names: Vec<String> = self.pools().await?.into_iter().map(|p| p.name).collect();
        let closest = names
            .into_iter()
            .map(|n| (strsim::jaro_winkler(name, &n), n))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n);
        Err(PoolError::NotFound { name: name.to_owned(), closest })
    }

    /// Every pool, the default ones included, by name.
    pub async fn pools(&self) -> Result<Vec<WorkPool>, StoreError> {
        let mut names = self.list_folders("pools").await?;
        names.extend(PoolKind::ALL.iter().map(|k| k.as_str().to_owned()));
        names.sort();
        names.dedup();
        let mut pools = Vec::new();
        for name in names {
            match self.pool(&name).await {
                Ok(Some((_, pool))) => pools.push(pool),
                Ok(None) => {}
                Err(e) => tracing::warn!(pool = name, error = %e, "skipping a work pool that cannot be read"),
            }
        }
        Ok(pools)
    }

    /// Creates a pool; refused if one of that name exists.
    pub async fn create_pool(&self, pool: WorkPool) -> Result<WorkPool, PoolError> {
        check_pool_name(&pool.name).map_err(PoolError::Refused)?;
        if PoolKind::of_default(&pool.name).is_some() {
            return Err(PoolError::Exists(pool.name));
        }
        let name = pool.name.clone();
        let revision = self.pool_revision(&name).await?;
        if !matches!(self.pool_at(&name, revision).await?, Some(None)) {
            // It exists (or its latest revision is being replaced right now).
            return Err(PoolError::Exists(name));
        }
        let mut pool = pool;
        pool.updated = SystemTime::now();
        if !self.write_revision(&name, revision + 1, Some(&pool)).await? {
            // Someone else created it (or changed it) just now.
            return Err(PoolError::Exists(name));
        }
        Ok(pool)
    }

    /// Applies `change` to the pool's latest revision and writes the next
    /// one. When another writer got there first, `change` is applied again
    /// on top of theirs.
    pub async fn update_pool(
        &self,
        name: &str,
        change: impl Fn(&mut WorkPool) -> Result<(), String>,
    ) -> Result<(u64, WorkPool), PoolError> {
        for _ in 0..ATTEMPTS {
            let (revision, mut pool) = self.pool_or_suggest(name).await?;
            change(&mut pool).map_err(PoolError::Refused)?;
            pool.updated = SystemTime::now();
            if self.write_revision(name, revision + 1, Some(&pool)).await? {
                return Ok((revision + 1, pool));
            }
        }
        Err(PoolError::Contended(name.to_owned()))
    }

    /// Deletes a pool. Refused for a default pool and for a pool that
    /// deployments name (their runs would wait forever).
    pub async fn delete_pool(&self, name: &str) -> Result<(), PoolError> {
        if PoolKind::of_default(name).is_some() {
            return Err(PoolError::Refused(format!(
                "`{name}` is a default pool and cannot be deleted; `weft pool update {name}` changes it"
            )));
        }
        let users = self.deployments_using(name, None).await?;
        if !users.is_empty() {
            return Err(PoolError::Refused(format!(
                "work pool `{name}` is used by deployment {}: point them at another pool (or `weft deployment \
                 delete` them) first",
                users.join(", ")
            )));
        }
        for _ in 0..ATTEMPTS {
            let (revision, _) = self.pool_or_suggest(name).await?;
            if self.write_revision(name, revision + 1, None).await? {
                return Ok(());
            }
        }
        Err(PoolError::Contended(name.to_owned()))
    }

    /// The deployments (as `` `name` ``) that send runs to a pool, or to one
    /// of its queues.
    async fn deployments_using(&self, pool: &str, queue: Option<&str>) -> Result<Vec<String>, StoreError> {
        Ok(self
            .deployments()
            .await?
            .into_iter()
            .filter(|d| d.pool_name() == pool && queue.is_none_or(|q| d.queue_name() == q))
            .map(|d| format!("`{}`", d.name))
            .collect())
    }

    /// Adds a queue to a pool; refused if the pool has one of that name.
    pub async fn create_queue(&self, pool: &str, queue: WorkQueue) -> Result<WorkPool, PoolError> {
        check_queue_name(&queue.name).map_err(PoolError::Refused)?;
        let (_, pool) = self
            .update_pool(pool, |p| {
                if p.queue(&queue.name).is_some() {
                    return Err(format!("work pool `{}` has a queue `{}` already", p.name, queue.name));
                }
                p.queues.push(queue.clone());
                Ok(())
            })
            .await?;
        Ok(pool)
    }

    /// Deletes a queue no deployment sends runs to; `default` stays.
    pub async fn delete_queue(&self, pool: &str, queue: &str) -> Result<(), PoolError> {
        if queue == DEFAULT_QUEUE {
            return Err(PoolError::Refused(format!(
                "every pool has the queue `{DEFAULT_QUEUE}`; `weft pool queue update {pool} {DEFAULT_QUEUE}` changes it"
            )));
        }
        let users = self.deployments_using(pool, Some(queue)).await?;
        if !users.is_empty() {
            return Err(PoolError::Refused(format!(
                "queue `{queue}` of work pool `{pool}` is used by deployment {}: point them at another queue first",
                users.join(", ")
            )));
        }
        self.update_pool(pool, |p| {
            let before = p.queues.len();
            p.queues.retain(|q| q.name != queue);
            if p.queues.len() == before {
                return Err(format!("work pool `{}` has no queue `{queue}`", p.name));
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Creates revision `revision`: `Ok(false)` if another writer made it
    /// first. Older revisions beyond [`KEPT_REVISIONS`] are deleted.
    async fn write_revision(&self, name: &str, revision: u64, pool: Option<&WorkPool>) -> Result<bool, StoreError> {
        let record = Revision { pool: pool.cloned(), written: SystemTime::now() };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Corrupt {
            url: self.url().to_owned(),
            path: revision_path(name, revision),
            reason: e.to_string(),
        })?;
        if !self.create(&revision_path(name, revision), Bytes::from(json)).await? {
            return Ok(false);
        }
        if revision > KEPT_REVISIONS {
            let stale = revision - KEPT_REVISIONS;
            for old in self.list_names(&folder(name)).await? {
                if old.strip_suffix(".json").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n <= stale) {
                    self.delete(&format!("{}/{old}", folder(name))).await?;
                }
            }
        }
        Ok(true)
    }

    /// Takes one of a pool's `limit` concurrency slots for a run.
    pub async fn acquire_pool_slot(&self, pool: &str, limit: u32, run_id: &str) -> Result<Option<Slot>, StoreError> {
        self.acquire_slot_in(&format!("pool-slots/{pool}"), limit, run_id).await
    }

    /// Takes one of a pool queue's `limit` concurrency slots for a run.
    pub async fn acquire_queue_slot(
        &self,
        pool: &str,
        queue: &str,
        limit: u32,
        run_id: &str,
    ) -> Result<Option<Slot>, StoreError> {
        self.acquire_slot_in(&format!("queue-slots/{pool}/{queue}"), limit, run_id).await
    }

    /// Gives back the pool slot and the queue slot a run holds, if it
    /// holds them.
    pub async fn release_pool_slot(&self, pool: &str, queue: Option<&str>, run_id: &str) -> Result<(), StoreError> {
        self.release_slot_in(&format!("pool-slots/{pool}"), run_id).await?;
        match queue {
            Some(queue) => self.release_slot_in(&format!("queue-slots/{pool}/{queue}"), run_id).await,
            None => Ok(()),
        }
    }
}
