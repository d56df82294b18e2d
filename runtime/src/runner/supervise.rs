//! What watches a recorded run from beside it: heartbeats to the store, the
//! cancellation check, and the process's signals. Both `weft run` and the
//! agent's `weft runner` use it, so a run started either way can be
//! cancelled, is judged stale by the same heartbeats, and is recorded when
//! the process is told to stop.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::model::State;
use crate::sandbox::StopSignal;
use crate::store::Store;

/// How often a run's process writes a heartbeat and checks for cancellation.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// What a signal to the process does to its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// Stop the guest and record the run Crashed, naming the signal.
    Record,
    /// Stop the guest and leave the final state to the infrastructure,
    /// which knows why it signalled (Kubernetes: an eviction, a deletion).
    LeaveToInfrastructure,
}

/// Heartbeats, the cancellation check and the signal handler of one run,
/// until dropped.
#[derive(Debug)]
pub struct Supervisor {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    signal: Arc<Mutex<Option<Signal>>>,
}

/// A signal the process received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit status a shell reports for a process this signal ended:
    /// 128 + the signal's number.
    pub fn exit_status(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

impl Supervisor {
    /// Starts watching run `id` as process `who` (a name written in its
    /// heartbeats): beats every `interval`, stops the run through `stop`
    /// when it is Cancelling, and on SIGINT or SIGTERM as `on_signal` says.
    /// A second signal ends the process at once, recorded or not.
    pub fn start(
        store: Store,
        id: String,
        who: String,
        stop: Arc<StopSignal>,
        interval: Duration,
        on_signal: OnSignal,
    ) -> Self {
        let watcher = tokio::spawn({
            let (store, id, stop) = (store, id, stop.clone());
            async move {
                loop {
                    if let Err(e) = store.beat(&id, &who).await {
                        tracing::warn!(run = %id, error = %e, "could not write a heartbeat");
                    }
                    if let Ok(Some((_, record))) = store.latest_state(&id).await
                        && record.state == State::Cancelling
                    {
                        let by = record.by.map(|b| format!(" by {b}")).unwrap_or_default();
                        stop.stop(format!("cancelled{by}"));
                    }
                    tokio::time::sleep(interval).await;
                }
            }
        });
        let signal = Arc::new(Mutex::new(None));
        let signals = tokio::spawn({
            let received = signal.clone();
            async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
                else {
                    return;
                };
                let first = tokio::select! {
                    _ = term.recv() => Signal::Terminate,
                    _ = int.recv() => Signal::Interrupt,
                };
                *received.lock().unwrap_or_else(PoisonError::into_inner) = Some(first);
                let reason = format!("the process running it received {}", first.name());
                match on_signal {
                    OnSignal::Record => stop.stop(reason),
                    OnSignal::LeaveToInfrastructure => stop.interrupt(reason),
                }
                // Recording takes a moment; one who insists is not kept waiting.
                let again = tokio::select! {
                    _ = term.recv() => Signal::Terminate,
                    _ = int.recv() => Signal::Interrupt,
                };
                eprintln!("received {} again: exiting without recording the run's end", again.name());
                std::process::exit(i32::from(again.exit_status()));
            }
        });
        Supervisor { tasks: vec![watcher, signals], signal }
    }

    /// The signal that stopped the run, if one did.
    pub fn signal(&self) -> Option<Signal> {
        *self.signal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
