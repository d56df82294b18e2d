//! Writing a live run's log lines and task runs to the store behind its back:
//! buffered in memory, flushed as chunks on a timer, when a buffer grows
//! large, and at the end. Never one object per line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Store, StoreError};

/// Task run snapshots by id, in the order they came: nearly the order the
/// task runs began, which chunks are sorted by. Ids are weft's own, so a
/// fast hash is safe.
type Snapshots = indexmap::IndexMap<String, TaskRun, foldhash::fast::RandomState>;
use crate::model::{LogLine, RoomWait, RunSink, TaskRun};

/// Lines (or task run snapshots) buffered before a flush is started early,
/// and the most one chunk holds.
const EARLY_FLUSH_LINES: usize = 2000;

/// Lines and task run snapshots buffered past which the run waits for a
/// flush at its next task call: a store slower than the run slows the run
/// down instead of the buffer growing with it.
const HOLD_AT_MOST: usize = 4 * EARLY_FLUSH_LINES;

/// The longest the run waits for a flush. A store that is away does not
/// stop a run: after a wait this long or a failed flush, the run goes on
/// without waiting, its lines kept, until a flush succeeds again.
const ROOM_PATIENCE: Duration = Duration::from_secs(1);

/// A [`RunSink`] that writes a run's logs and task runs to the store.
pub struct StoreRecorder {
    store: Store,
    run_id: String,
    pending: Mutex<Pending>,
    flushing: tokio::sync::Mutex<Sequences>,
    wake: Notify,
    stop: Notify,
    /// Told when a flush ends, for a run waiting for room.
    flushed: Notify,
    /// Whether a run may wait for room: not while the store fails.
    waits: AtomicBool,
    timer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Pending {
    logs: Vec<LogLine>,
    /// The latest snapshot of each task run changed since the last flush.
    tasks: Snapshots,
    /// Written snapshots (and their keys), written over by the next ones:
    /// a run making millions of task runs allocates none for them here,
    /// nor frees on one thread what it allocated on another.
    spare: Vec<(String, TaskRun)>,
    /// An empty map with room, swapped in for `tasks` by a flush.
    spare_map: Snapshots,
}

#[derive(Default)]
struct Sequences {
    logs: Option<u32>,
    tasks: Option<u32>,
}

impl StoreRecorder {
    /// Starts recording for a run, flushing every `interval`.
    pub fn start(store: Store, run_id: String, interval: Duration) -> Arc<Self> {
        let recorder = Arc::new(StoreRecorder {
            store,
            run_id,
            pending: Mutex::default(),
            flushing: tokio::sync::Mutex::default(),
            wake: Notify::new(),
            stop: Notify::new(),
            flushed: Notify::new(),
            waits: AtomicBool::new(true),
            timer: Mutex::new(None),
        });
        let timer = tokio::spawn({
            let recorder = recorder.clone();
            async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {}
                        () = recorder.wake.notified() => {}
                        () = recorder.stop.notified() => return,
                    }
                    if let Err(e) = recorder.flush().await {
                        // Kept in memory; the next flush tries again.
                        tracing::warn!(run = %recorder.run_id, error = %e, "could not write logs to the store; will retry");
                    }
                }
            }
        });
        *recorder.timer.lock().unwrap_or_else(PoisonError::into_inner) = Some(timer);
        recorder
    }

    /// Writes what is buffered. On failure the lines stay buffered.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let flushed = self.write_pending().await;
        self.waits.store(flushed.is_ok(), Ordering::Relaxed);
        self.flushed.notify_waiters();
        flushed
    }

    async fn write_pending(&self) -> Result<(), StoreError> {
        let mut sequences = self.flushing.lock().await;
        // Only swapped under the lock, which the run takes at every task call.
        let (logs, mut taken) = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let empty = std::mem::take(&mut pending.spare_map);
            (std::mem::take(&mut pending.logs), std::mem::replace(&mut pending.tasks, empty))
        };
        let (keys, mut tasks): (Vec<String>, Vec<TaskRun>) = taken.drain(..).unzip();
        tasks.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        // Chunks of at most EARLY_FLUSH_LINES entries each, so that readers
        // never load a huge one.
        let mut logs = logs;
        while !logs.is_empty() {
            let rest = logs.split_off(logs.len().min(EARLY_FLUSH_LINES));
            if let Err(e) = self.store.append_logs(&self.run_id, &logs, &mut sequences.logs).await {
                logs.extend(rest);
                self.restore(logs, tasks);
                return Err(e);
            }
            logs = rest;
        }
        let mut written = 0;
        while written < tasks.len() {
            let end = tasks.len().min(written + EARLY_FLUSH_LINES);
            if let Err(e) = self.store.append_task_runs(&self.run_id, &tasks[written..end], &mut sequences.tasks).await
            {
                self.restore(Vec::new(), tasks.split_off(written));
                return Err(e);
            }
            written = end;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.spare_map.capacity() < taken.capacity() {
            pending.spare_map = taken;
        }
        let room = HOLD_AT_MOST.saturating_sub(pending.spare.len());
        pending.spare.extend(keys.into_iter().zip(tasks).take(room));
        Ok(())
    }

    /// How many lines and task run snapshots are buffered.
    fn held(&self) -> usize {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.logs.len() + pending.tasks.len()
    }

    /// Puts back what a failed flush took, ahead of anything newer.
    fn restore(&self, mut logs: Vec<LogLine>, tasks: Vec<TaskRun>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        logs.append(&mut pending.logs);
        pending.logs = logs;
        for task in tasks {
            pending.tasks.entry(task.id.clone()).or_insert(task);
        }
    }

    /// Stops the timer and writes everything still buffered.
    pub async fn finish(&self) -> Result<(), StoreError> {
        self.stop.notify_one();
        let timer = self.timer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(timer) = timer {
            let _ = timer.await;
        }
        self.flush().await
    }
}

impl RunSink for StoreRecorder {
    fn log(&self, line: LogLine) {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.logs.push(line);
            pending.logs.len() >= EARLY_FLUSH_LINES
        };
        if full {
            self.wake.notify_one();
        }
    }

    fn room(&self) -> Option<RoomWait<'_>> {
        if self.held() < HOLD_AT_MOST || !self.waits.load(Ordering::Relaxed) {
            return None;
        }
        Some(Box::pin(async move {
            loop {
                let flushed = self.flushed.notified();
                tokio::pin!(flushed);
                // Listening before looking: a flush that ends in between
                // is not missed.
                flushed.as_mut().enable();
                if self.held() < HOLD_AT_MOST || !self.waits.load(Ordering::Relaxed) {
                    return;
                }
                self.wake.notify_one();
                if tokio::time::timeout(ROOM_PATIENCE, flushed).await.is_err() {
                    self.waits.store(false, Ordering::Relaxed);
                    return;
                }
            }
        }))
    }

    fn task_run(&self, task_run: &TaskRun) {
        let full = {
            let mut guard = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let pending = &mut *guard;
            match pending.tasks.get_mut(&task_run.id) {
                // Most task runs end before the flush after they began: the
                // snapshot waiting is written over.
                Some(waiting) => overwrite(waiting, task_run),
                None => {
                    let (key, snapshot) = match pending.spare.pop() {
                        Some((mut key, mut snapshot)) => {
                            key.clone_from(&task_run.id);
                            snapshot.id.clone_from(&task_run.id);
                            overwrite(&mut snapshot, task_run);
                            (key, snapshot)
                        }
                        None => (task_run.id.clone(), task_run.clone()),
                    };
                    pending.tasks.insert(key, snapshot);
                }
            }
            pending.tasks.len() >= EARLY_FLUSH_LINES
        };
        if full {
            self.wake.notify_one();
        }
    }
}

/// Makes `waiting` a copy of `latest`, a later snapshot of the same task
/// run, reusing its strings.
fn overwrite(waiting: &mut TaskRun, latest: &TaskRun) {
    let TaskRun { id: _, name, state, component, attempts, cached, cache_key, started, ended, error } = latest;
    waiting.name.clone_from(name);
    waiting.state = *state;
    waiting.component.clone_from(component);
    waiting.attempts = *attempts;
    waiting.cached = *cached;
    waiting.cache_key.clone_from(cache_key);
    waiting.started = *started;
    waiting.ended = *ended;
    waiting.error.clone_from(error);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{EARLY_FLUSH_LINES, HOLD_AT_MOST, StoreRecorder};
    use crate::model::{RunSink, State, TaskRun};
    use crate::store::Store;

    fn ended(i: usize) -> TaskRun {
        TaskRun {
            id: format!("{i:08}"),
            name: "t".into(),
            state: State::Completed,
            component: None,
            attempts: 1,
            cached: false,
            cache_key: None,
            started: SystemTime::now(),
            ended: Some(SystemTime::now()),
            error: None,
        }
    }

    #[tokio::test]
    async fn a_run_ahead_of_its_store_waits_for_a_flush_instead_of_buffering_more() {
        let store = Store::open("memory://", &[]).expect("store");
        // No timer flush during the test: only the ones asked for.
        let recorder = StoreRecorder::start(store.clone(), "run".into(), Duration::from_secs(3600));
        for i in 0..HOLD_AT_MOST - 1 {
            recorder.task_run(&ended(i));
        }
        assert!(recorder.room().is_none(), "room while below the mark");
        recorder.task_run(&ended(HOLD_AT_MOST));
        let wait = recorder.room().expect("a wait at the mark");
        tokio::time::timeout(Duration::from_secs(10), wait).await.expect("the wait ends with a flush");
        assert!(recorder.held() < EARLY_FLUSH_LINES, "{} held after the flush", recorder.held());
        recorder.finish().await.expect("finish");
        assert_eq!(store.read_task_runs("run").await.expect("read").counts().total(), HOLD_AT_MOST as u64);
    }
}
