//! Test hooks: what the simulated scheduler and kubelet do to a pod other
//! than run it, chosen per Job by the pod-template annotation
//! `weft.test/behaviour` or later per pod by
//! [`TestApiServer::trigger`](crate::TestApiServer::trigger). A real
//! cluster ignores them; a test that must also run against one uses the
//! real-world trigger named on each variant instead (see the crate docs).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The annotation on a Job's pod template that selects a [`Behaviour`].
pub const BEHAVIOUR_ANNOTATION: &str = "weft.test/behaviour";

/// What happens to a pod. The annotation's text form is shown per variant;
/// seconds may be fractional (`oom-after:0.5`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Behaviour {
    /// `normal`: scheduled, pulled and run. Triggered on a `pending` pod, it
    /// lets the pod be scheduled.
    #[default]
    Normal,
    /// `pending`: never scheduled (PodScheduled=False, Unschedulable,
    /// `0/3 nodes are available: 3 Insufficient memory.`, FailedScheduling).
    /// Real-world trigger: a `nodeSelector` the node does not match.
    Pending,
    /// `slow-pull:<seconds>`: waiting in ContainerCreating that long
    /// (Pulling event), then run. Real-world equivalent: a pull of an image
    /// the node has not cached, which takes `Config::pull_delay`.
    SlowPull(Duration),
    /// `image-pull-error`: waiting in ErrImagePull, then ImagePullBackOff,
    /// for ever (Failed and BackOff events). Real-world trigger: an image
    /// from a registry under `.invalid`.
    ImagePullError,
    /// `invalid-image`: waiting in InvalidImageName for ever. Real-world
    /// trigger: an image name that does not parse, such as `Weft:Bad`.
    InvalidImage,
    /// `oom-after:<seconds>`: run, then SIGKILL after that long, reported
    /// as terminated `OOMKilled`, exit code 137. Real-world trigger: a
    /// process using more than `resources.limits.memory`.
    OomAfter(Duration),
    /// `evict-after:<seconds>`: run, then killed after that long; the pod
    /// ends Failed with reason `Evicted`, as node-pressure eviction leaves
    /// it. The eviction API (`POST pods/{name}/eviction`) is the
    /// real-world way to evict, but it deletes the pod instead.
    EvictAfter(Duration),
}

/// An annotation value that names no [`Behaviour`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown test behaviour {0:?}: write normal, pending, slow-pull:<seconds>, image-pull-error, invalid-image, oom-after:<seconds> or evict-after:<seconds>"
)]
pub struct UnknownBehaviour(pub String);

impl FromStr for Behaviour {
    type Err = UnknownBehaviour;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownBehaviour(text.to_owned());
        let (name, argument) = match text.trim().split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (text.trim(), None),
        };
        let seconds = || -> Result<Duration, UnknownBehaviour> {
            let value: f64 = argument.ok_or_else(unknown)?.trim().parse().map_err(|_| unknown())?;
            Duration::try_from_secs_f64(value).map_err(|_| unknown())
        };
        match (name, argument) {
            ("normal", None) => Ok(Behaviour::Normal),
            ("pending", None) => Ok(Behaviour::Pending),
            ("image-pull-error", None) => Ok(Behaviour::ImagePullError),
            ("invalid-image", None) => Ok(Behaviour::InvalidImage),
            ("slow-pull", Some(_)) => Ok(Behaviour::SlowPull(seconds()?)),
            ("oom-after", Some(_)) => Ok(Behaviour::OomAfter(seconds()?)),
            ("evict-after", Some(_)) => Ok(Behaviour::EvictAfter(seconds()?)),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Behaviour::Normal => f.write_str("normal"),
            Behaviour::Pending => f.write_str("pending"),
            Behaviour::SlowPull(d) => write!(f, "slow-pull:{}", d.as_secs_f64()),
            Behaviour::ImagePullError => f.write_str("image-pull-error"),
            Behaviour::InvalidImage => f.write_str("invalid-image"),
            Behaviour::OomAfter(d) => write!(f, "oom-after:{}", d.as_secs_f64()),
            Behaviour::EvictAfter(d) => write!(f, "evict-after:{}", d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_parse_and_print_back() -> Result<(), UnknownBehaviour> {
        for text in
            ["normal", "pending", "slow-pull:2", "image-pull-error", "invalid-image", "oom-after:0.5", "evict-after:1"]
        {
            assert_eq!(text.parse::<Behaviour>()?.to_string(), text);
        }
        assert_eq!("slow-pull:1.5".parse::<Behaviour>()?, Behaviour::SlowPull(Duration::from_millis(1500)));
        assert!("slow-pull".parse::<Behaviour>().is_err());
        assert!("oom-after:x".parse::<Behaviour>().is_err());
        assert!("crash".parse::<Behaviour>().is_err());
        Ok(())
    }
}
