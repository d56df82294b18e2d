//! Deployments and the agents' shared bookkeeping: the run queue, the
//! deployments' concurrency slots, which agent claimed which run, and the
//! runners' heartbeats.
//!
//! ```text
//! deployments/<name>.json              applied deployments
//! queue/<due-ms>-<run-id>=<pool>=<q>  a marker per Scheduled run, deleted once claimed
//! slots/<deployment>/<n>               a deployment's concurrency slots, created-only by the run that holds one
//! agents/<agent>/<run-id>              runs an agent has claimed and not yet seen end
//! agent-heartbeats/<agent>.json        what each agent says about itself, every 10 s
//! runs/<id>/heartbeat.json             the runner's latest heartbeat
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::model::Deployment;

/// A queued run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Queued {
    /// When it is due.
    pub due: SystemTime,
    /// The run.
    pub run_id: String,
    /// Its work pool and the queue within it, when the marker names them
    /// (markers written before pools do not).
    pub pool: Option<(String, String)>,
    marker: String,
}

/// Between the parts of a queue marker: in no run id, pool or queue name,
/// and kept as is by every object store (`~` would be percent-encoded).
const SEPARATOR: char = '=';

/// A concurrency slot taken for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    path: String,
}

/// A runner's sign of life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// When it was written.
    #[serde(with = "crate::model::rfc3339")]
    pub time: SystemTime,
    /// Where the runner runs: host name and process id, or pod name.
    pub runner: String,
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Store {
    /// Deletes an object under the root; deleting what is not there is fine.
    pub async fn delete(&self, relative: &str) -> Result<(), StoreError> {
        match self.objects.delete(&self.path(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(format!("deleting `{relative}`"), e)),
        }
    }

    /// Applies (creates or replaces) a deployment.
    pub async fn put_deployment(&self, deployment: &Deployment) -> Result<(), StoreError> {
        let path = format!("deployments/{}.json", deployment.name);
        let json = serde_json::to_vec_pretty(deployment).map_err(|e| StoreError::Corrupt {
            url: self.url().to_owned(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        self.put(&path, json.into()).await
    }

    /// A deployment by name.
    pub async fn deployment(&self, name: &str) -> Result<Option<Deployment>, StoreError> {
        self.get_json(&format!("deployments/{name}.json")).await
    }

    /// All deployments, by name. One that does not parse is skipped with a
    /// warning, so one bad record cannot stop an agent.
    pub async fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        let mut deployments = Vec::new();
        for file in self.list_names("deployments").await? {
            let Some(name) = file.strip_suffix(".json") else { continue };
            match self.deployment(name).await {
                Ok(Some(deployment)) => deployments.push(deployment),
                Ok(None) => {}
                Err(e) => tracing::warn!(deployment = name, error = %e, "skipping a deployment that cannot be read"),
            }
        }
        Ok(deployments)
    }

    /// Deletes a deployment; its runs stay.
    pub async fn delete_deployment(&self, name: &str) -> Result<bool, StoreError> {
        let path = format!("deployments/{name}.json");
        let existed = self.exists(&path).await?;
        self.delete(&path).await?;
        Ok(existed)
    }

    /// Puts a run in the queue, due at `due`. The marker names its pool and
    /// queue, so that agents pick their pools' runs without reading them.
    pub async fn enqueue(&self, run: &crate::model::FlowRun, due: SystemTime) -> Result<(), StoreError> {
        let marker = match (&run.work_pool, &run.work_queue) {
            (Some(pool), Some(queue)) => format!("{:013}-{}{SEPARATOR}{pool}{SEPARATOR}{queue}", millis(due), run.id),
            _ => format!("{:013}-{}", millis(due), run.id),
        };
        self.put(&format!("queue/{marker}"), Bytes::new()).await
    }

    /// The queue, soonest first.
    pub async fn queue(&self) -> Result<Vec<Queued>, StoreError> {
        let mut queued: Vec<Queued> = self
            .list_names("queue")
            .await?
            .into_iter()
            .filter_map(|marker| {
                let (due, rest) = marker.split_once('-')?;
                let due = UNIX_EPOCH + Duration::from_millis(due.parse().ok()?);
                let mut parts = rest.split(SEPARATOR);
                let run_id = parts.next()?.to_owned();
                let pool = match (parts.next(), parts.next()) {
                    (Some(pool), Some(queue)) => Some((pool.to_owned(), queue.to_owned())),
                    _ => None,
                };
                Some(Queued { due, run_id, pool, marker })
            })
            .collect();
        queued.sort();
        Ok(queued)
    }

    /// Takes a run off the queue.
    pub async fn dequeue(&self, queued: &Queued) -> Result<(), StoreError> {
        self.delete(&format!("queue/{}", queued.marker)).await
    }

    /// Takes one of a deployment's `limit` concurrency slots for a run:
    /// `Some(slot)`, or `None` when all are held. Slots are create-only
    /// objects, so agents sharing a store never exceed the limit together.
    pub async fn acquire_slot(&self, deployment: &str, limit: u32, run_id: &str) -> Result<Option<Slot>, StoreError> {
        self.acquire_slot_in(&format!("slots/{deployment}"), limit, run_id).await
    }

    /// Gives back the slot a run holds, if it holds one.
    pub async fn release_slot(&self, deployment: &str, run_id: &str) -> Result<(), StoreError> {
        self.release_slot_in(&format!("slots/{deployment}"), run_id).await
    }

    /// Takes one of the `limit` slots in `folder` for a run.
    pub(super) async fn acquire_slot_in(
        &self,
        folder: &str,
        limit: u32,
        run_id: &str,
    ) -> Result<Option<Slot>, StoreError> {
        let held = self.list_names(folder).await?;
        for slot in 0..limit {
            let name = slot.to_string();
            if held.contains(&name) {
                continue;
            }
            let path = format!("{folder}/{name}");
            if self.create(&path, Bytes::from(run_id.to_owned())).await? {
                return Ok(Some(Slot { path }));
            }
        }
        Ok(None)
    }

    /// Gives back a slot taken for a claim that did not happen. Only that
    /// slot: two agents trying to claim one run may each hold a slot for
    /// it, and the winner keeps its own.
    pub async fn give_back(&self, slot: &Slot) -> Result<(), StoreError> {
        self.delete(&slot.path).await
    }

    /// Gives back the slot in `folder` a run holds, if it holds one.
    pub(super) async fn release_slot_in(&self, folder: &str, run_id: &str) -> Result<(), StoreError> {
        for slot in self.list_names(folder).await? {
            let path = format!("{folder}/{slot}");
            if self.get(&path).await?.is_some_and(|holder| holder == run_id.as_bytes()) {
                self.delete(&path).await?;
            }
        }
        Ok(())
    }

    /// Records that an agent claimed a run (so that, restarted, it finds it).
    pub async fn mark_claimed(&self, agent: &str, run_id: &str) -> Result<(), StoreError> {
        self.put(&format!("agents/{agent}/{run_id}"), Bytes::new()).await
    }

    /// The runs an agent claimed and has not seen end.
    pub async fn claimed(&self, agent: &str) -> Result<Vec<String>, StoreError> {
        self.list_names(&format!("agents/{agent}")).await
    }

    /// Forgets a claim once the run has ended.
    pub async fn forget_claim(&self, agent: &str, run_id: &str) -> Result<(), StoreError> {
        self.delete(&format!("agents/{agent}/{run_id}")).await
    }

    /// Writes an agent's record.
    pub async fn put_agent_record(&self, record: &crate::model::AgentRecord) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(record).unwrap_or_default();
        self.put(&format!("agent-heartbeats/{}.json", record.name), json.into()).await
    }

    /// Every agent's record, by name; one that does not parse is skipped.
    pub async fn agent_records(&self) -> Result<Vec<crate::model::AgentRecord>, StoreError> {
        let mut records = Vec::new();
        for file in self.list_names("agent-heartbeats").await? {
            let Some(name) = file.strip_suffix(".json") else { continue };
            match self.get_json(&format!("agent-heartbeats/{name}.json")).await {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {}
                Err(e) => tracing::warn!(agent = name, error = %e, "skipping an agent record that cannot be read"),
            }
        }
        Ok(records)
    }

    /// Forgets an agent's record.
    pub async fn delete_agent_record(&self, name: &str) -> Result<(), StoreError> {
        self.delete(&format!("agent-heartbeats/{name}.json")).await
    }

    /// Writes a runner's heartbeat.
    pub async fn beat(&self, run_id: &str, runner: &str) -> Result<(), StoreError> {
        let beat = Heartbeat { time: SystemTime::now(), runner: runner.to_owned() };
        let json = serde_json::to_vec(&beat).unwrap_or_default();
        self.put(&format!("runs/{run_id}/heartbeat.json"), json.into()).await
    }

    /// A run's latest heartbeat.
    pub async fn heartbeat(&self, run_id: &str) -> Result<Option<Heartbeat>, StoreError> {
        self.get_json(&format!("runs/{run_id}/heartbeat.json")).await
    }
}
