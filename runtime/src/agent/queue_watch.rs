//! On a local store the agent is woken as soon as a run is queued, instead
//! of at its next poll: the queue folder is watched (inotify on Linux).
//! Object stores offer no such thing and are polled.

use std::path::Path;
use std::sync::Arc;

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

/// A watch on a local store's queue folder.
pub(super) struct QueueWatch {
    queued: Arc<Notify>,
    _watcher: notify::RecommendedWatcher,
}

impl QueueWatch {
    /// Watches `<store>/queue`; `None` (and the agent polls) when the
    /// system will not watch it.
    pub(super) fn start(store_dir: &Path) -> Option<QueueWatch> {
        let dir = store_dir.join("queue");
        let started = || -> notify::Result<QueueWatch> {
            std::fs::create_dir_all(&dir)?;
            let queued = Arc::new(Notify::new());
            let wake = queued.clone();
            let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // A marker is written aside and renamed into place; either
                // step wakes the agent, which reads the queue itself.
                if event.is_ok_and(|e| matches!(e.kind, EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))))
                {
                    wake.notify_one();
                }
            })?;
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
            Ok(QueueWatch { queued, _watcher: watcher })
        };
        match started() {
            Ok(watch) => Some(watch),
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e, "cannot watch the queue folder; polling it instead");
                None
            }
        }
    }

    /// Completes when something was queued since the last call.
    pub(super) async fn queued(&self) {
        self.queued.notified().await;
    }
}
