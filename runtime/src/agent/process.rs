//! The `process` infrastructure: each flow run is a `weft runner` child
//! process of the agent, with the store in its environment.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::Notify;

use super::{Adoption, Exit, Infrastructure, LaunchError};
use crate::model::{Deployment, FlowRun};

/// How many of a runner's last output lines are kept to explain a crash.
const TAIL: usize = 20;

/// Runs flow runs as child processes.
#[derive(Debug, Clone)]
pub struct ProcessInfrastructure {
    /// The `weft` executable.
    pub exe: PathBuf,
    /// The store URL the runners use.
    pub store_url: String,
    /// The store options the runners use.
    pub store_options: Vec<(String, String)>,
    /// Notified when a runner's output ends, which is when it exits.
    ended: Arc<Notify>,
}

impl ProcessInfrastructure {
    /// Runners of `exe` (`weft`) on the store at `store_url` with `store_options`.
    pub fn new(exe: PathBuf, store_url: String, store_options: Vec<(String, String)>) -> Self {
        ProcessInfrastructure { exe, store_url, store_options, ended: Arc::new(Notify::new()) }
    }
}

/// A runner child process, waited for by a task of its own.
pub struct ProcessHandle {
    pid: Option<u32>,
    /// Set when the process has exited (and been reaped).
    status: Arc<Mutex<Option<std::io::Result<ExitStatus>>>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// Keeps the last lines of a runner's output.
fn keep_tail(stream: impl AsyncRead + Unpin + Send + 'static, tail: Arc<Mutex<VecDeque<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            // The runner echoes its log as JSON lines; keep their text.
            let text = serde_json::from_str::<crate::model::LogLine>(&line).map(|l| l.message).unwrap_or(line);
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == TAIL {
                tail.pop_front();
            }
            tail.push_back(text);
        }
    });
}

/// Sends `signal` to a runner that has not been seen to exit (a pid is
/// reused only after its process is reaped, which sets the status moments
/// later).
fn signal(handle: &ProcessHandle, signal: nix::sys::signal::Signal) {
    let status = handle.status.lock().unwrap_or_else(PoisonError::into_inner);
    if status.is_none()
        && let Some(pid) = handle.pid.and_then(|p| i32::try_from(p).ok())
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

impl Infrastructure for ProcessInfrastructure {
    type Handle = ProcessHandle;

    fn kind(&self) -> &'static str {
        "process"
    }

    async fn launch(&self, run: &FlowRun, _deployment: Option<&Deployment>) -> Result<ProcessHandle, LaunchError> {
        let options: std::collections::BTreeMap<&str, &str> =
            self.store_options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut child = Command::new(&self.exe)
            .args(["runner", "--run", &run.id])
            .env("WEFT_STORE", &self.store_url)
            .env("WEFT_STORE_OPTIONS", serde_json::to_string(&options).unwrap_or_default())
            .stdin(Stdio::null())
            // A group of its own: Ctrl-C at the agent's terminal reaches the
            // agent, which gives its runners the grace period, not the runners.
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| LaunchError::Refused(format!("cannot start `{} runner`: {e}", self.exe.display())))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stdout) = child.stdout.take() {
            keep_tail(stdout, tail.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            keep_tail(stderr, tail.clone());
        }
        let pid = child.id();
        let status = Arc::new(Mutex::new(None));
        tokio::spawn({
            let (status, ended) = (status.clone(), self.ended.clone());
            async move {
                let exit = child.wait().await;
                *status.lock().unwrap_or_else(PoisonError::into_inner) = Some(exit);
                ended.notify_one();
            }
        });
        Ok(ProcessHandle { pid, status, tail })
    }

    // A restarted agent is not the parent of the runners it had: it follows
    // them by their heartbeats.
    async fn adopt(&self, _run: &FlowRun, _deployment: Option<&Deployment>) -> Adoption<ProcessHandle> {
        Adoption::Unsupported
    }

    fn poll(&self, handle: &mut ProcessHandle) -> Option<Exit> {
        use std::os::unix::process::ExitStatusExt;
        let status = match handle.status.lock().unwrap_or_else(PoisonError::into_inner).as_ref()? {
            Ok(status) => *status,
            Err(e) => return Some(Exit { description: format!("it could not be waited for: {e}"), crash: None }),
        };
        let description = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            _ => status.to_string(),
        };
        Some(Exit { description, crash: None })
    }

    fn stop(&self, handle: &mut ProcessHandle) {
        signal(handle, nix::sys::signal::Signal::SIGTERM);
    }

    fn kill(&self, handle: &mut ProcessHandle) {
        signal(handle, nix::sys::signal::Signal::SIGKILL);
    }

    fn last_lines(&self, handle: &ProcessHandle) -> Vec<String> {
        handle.tail.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    fn changes(&self) -> Option<Arc<Notify>> {
        Some(self.ended.clone())
    }
}
