//! How the agent follows a watch through API server trouble: a watch that
//! expired (410 Gone, the server's history no longer reaches back to where
//! the watch was) is re-listed at once, since the server answered and is
//! up; only failures to reach the server, or other errors, back off, and
//! never for long, so that an agent notices promptly when the server is
//! back.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::watcher;

/// The first wait after a failure.
const FIRST: Duration = Duration::from_millis(250);
/// The longest wait between attempts while the server is away.
const LONGEST: Duration = Duration::from_secs(2);

/// The next event of a watch, riding out its errors as `retry` says;
/// `None` when the stream ends.
pub(super) async fn next<K>(
    stream: &mut (impl Stream<Item = watcher::Result<watcher::Event<K>>> + Unpin),
    retry: &mut Retry,
    what: &str,
) -> Option<watcher::Event<K>> {
    loop {
        match stream.next().await? {
            Ok(event) => {
                retry.ok(what);
                return Some(event);
            }
            Err(e) => retry.failed(what, &e).await,
        }
    }
}

/// The state of one watch's retries.
#[derive(Debug, Default)]
pub(super) struct Retry {
    delay: Option<Duration>,
}

/// Whether the error is an expired watch: the server asks for a re-list.
pub(super) fn expired(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::InitialListFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

impl Retry {
    /// An event arrived: the watch works.
    pub(super) fn ok(&mut self, what: &str) {
        if self.delay.take().is_some() {
            tracing::info!("watching {what} again");
        }
    }

    /// The watch failed with `error`: returns after the wait it calls for
    /// (none for an expired watch, whose stream re-lists when polled next).
    pub(super) async fn failed(&mut self, what: &str, error: &watcher::Error) {
        if let Some(delay) = self.wait_after(what, error) {
            tokio::time::sleep(delay).await;
        }
    }

    fn wait_after(&mut self, what: &str, error: &watcher::Error) -> Option<Duration> {
        if expired(error) {
            tracing::info!(error = %error, "the watch of {what} expired; listing them again now");
            return None;
        }
        let delay = match self.delay {
            None => {
                tracing::warn!(error = %error, "watching {what} failed; retrying every {}s at most", LONGEST.as_secs());
                FIRST
            }
            Some(previous) => {
                tracing::debug!(error = %error, "watching {what} failed again");
                (previous * 2).min(LONGEST)
            }
        };
        self.delay = Some(delay);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Box<kube::core::Status> {
        Box::new(kube::core::Status { code, ..Default::default() })
    }

    #[test]
    fn an_expired_watch_is_relisted_at_once_and_failures_back_off_briefly() {
        let mut retry = Retry::default();
        let gone = watcher::Error::WatchError(status(410));
        assert_eq!(retry.wait_after("pods", &gone), None, "a 410 is no reason to wait");

        let unreachable = watcher::Error::NoResourceVersion;
        let waits: Vec<u128> =
            (0..6).filter_map(|_| retry.wait_after("pods", &unreachable)).map(|d| d.as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(retry.wait_after("pods", &gone), None, "even while the server was away");
        retry.ok("pods");
        assert_eq!(retry.wait_after("pods", &unreachable), Some(FIRST), "success starts the backoff over");
    }
}
