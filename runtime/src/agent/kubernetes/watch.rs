//! How the agent follows a watch through API server trouble: a watch that
//! expired (410 Gone, the server's history no longer reaches back to where
//! the watch was) is re-listed at once, since the server answered and is
//! up; only failures to reach the server, or other errors, back off, and
//! never for long, so that an agent notices promptly when the server is
//! back.

use std::time::Duration;

use kube::runtime::watcher;

/// The first wait after a failure.
const FIRST: Duration = Duration::from_millis(250);
/// The longest wait between attempts while the server is away.
const LONGEST: Duration = Duration::from_secs(2);

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
        if expired(error) {
            tracing::info!(error = %error, "the watch of {what} expired; listing them again now");
            return;
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
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Box<kube::core::Status> {
        Box::new(kube::core::Status { code, ..Default::default() })
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_watch_is_relisted_at_once_and_failures_back_off_briefly() {
        let mut retry = Retry::default();
        let start = tokio::time::Instant::now();
        retry.failed("pods", &watcher::Error::WatchError(status(410))).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "a 410 is no reason to wait");

        let unreachable = watcher::Error::NoResourceVersion;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let before = tokio::time::Instant::now();
            retry.failed("pods", &unreachable).await;
            waits.push(before.elapsed().as_millis());
        }
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        retry.ok("pods");
        let before = tokio::time::Instant::now();
        retry.failed("pods", &unreachable).await;
        assert_eq!(before.elapsed(), FIRST, "success starts the backoff over");
        let before = tokio::time::Instant::now();
        retry.failed("pods", &watcher::Error::WatchError(status(410))).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
