//! Task components as a deployment registers them: which component, by
//! digest, and how its task runs are treated (timeout, memory, retries).

use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::Digest;

/// How the task runs of one task component are treated. Unset limits are
/// the flow run's own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskPolicy {
    /// Wall-clock limit of one attempt; default: the flow run's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::deployment::optional_duration")]
    pub timeout: Option<Duration>,
    /// Memory limit of one attempt; default: the flow run's memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_size")]
    pub memory: Option<u64>,
    /// How many times a failed attempt is retried. Only errors the task marks
    /// retryable (and traps and timeouts) are retried.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// The wait before each retry: one duration, or a list (the last entry
    /// repeats).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "one_or_many_durations")]
    pub retry_delay: Vec<Duration>,
    /// Exponential backoff instead of `retry_delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<Backoff>,
    /// Reuse results across flow runs: a call with the same input to the
    /// same component returns the cached result without running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,
}

/// How a task component's results are cached: by the component's digest
/// and the call's input, in the store, so that any run on any machine
/// reuses them until they expire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachePolicy {
    /// How long a result is used; default: until the store is cleaned.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::deployment::optional_duration")]
    pub expiration: Option<Duration>,
}

/// `cache: true`, `cache: false`, or `cache: {expiration: 1h}`.
fn cache_policy<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CachePolicy>, D::Error> {
    struct Visitor;
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Option<CachePolicy>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("`true`, `false`, or a mapping such as `{expiration: 1h}`")
        }
        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            Ok(on.then(CachePolicy::default))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            CachePolicy::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(Visitor)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Exponential backoff with jitter: the n-th retry waits `initial ×
/// factor^(n-1)`, at most `max`, varied at random by up to ±`jitter` of
/// itself, so that many failing tasks do not retry in lockstep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// The wait before the first retry.
    #[serde(with = "super::deployment::duration")]
    pub initial: Duration,
    /// What each wait is multiplied by; at least 1.
    #[serde(default = "two", deserialize_with = "factor")]
    pub factor: f64,
    /// The longest wait.
    #[serde(default = "ten_minutes", with = "super::deployment::duration")]
    pub max: Duration,
    /// The share of each wait varied at random, from 0 (none) to 1.
    #[serde(default = "one_fifth", deserialize_with = "jitter")]
    pub jitter: f64,
}

fn two() -> f64 {
    2.0
}

fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}

fn one_fifth() -> f64 {
    0.2
}

fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let factor = f64::deserialize(d)?;
    if factor.is_finite() && factor >= 1.0 {
        Ok(factor)
    } else {
        Err(de::Error::custom(format!("backoff `factor` {factor} must be a number of at least 1, such as 2")))
    }
}

fn jitter<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let jitter = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&jitter) {
        Ok(jitter)
    } else {
        Err(de::Error::custom(format!("backoff `jitter` {jitter} must be between 0 and 1, such as 0.2")))
    }
}

impl TaskPolicy {
    /// The wait before retry number `retry` (from 1). `random` is a number
    /// in [0, 1) that sets the jitter.
    pub fn retry_delay(&self, retry: u32, random: f64) -> Duration {
        match &self.retry_backoff {
            Some(backoff) => backoff.delay(retry, random),
            None => {
                let index = (retry.max(1) - 1) as usize;
                self.retry_delay.get(index).or(self.retry_delay.last()).copied().unwrap_or_default()
            }
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (from 1), with `random` in [0, 1).
    pub fn delay(&self, retry: u32, random: f64) -> Duration {
        let exponent = i32::try_from(retry.max(1) - 1).unwrap_or(i32::MAX);
        let base = (self.initial.as_secs_f64() * self.factor.powi(exponent)).min(self.max.as_secs_f64());
        let varied = base * (1.0 + self.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0));
        Duration::try_from_secs_f64(varied.max(0.0)).unwrap_or(self.max)
    }
}

fn optional_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    super::deployment::size(d).map(Some)
}

fn one_or_many_durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Wrapped>),
        One(Wrapped),
    }
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Wrapped(#[serde(with = "super::deployment::duration")] Duration);
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(list) => list.into_iter().map(|w| w.0).collect(),
        OneOrMany::One(one) => vec![one.0],
    })
}

/// A task component as written in a deployment file: a component reference
/// alone (`summarize: ./summarize.wasm`), or a mapping with its policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The component: a path (relative to the file), `sha256:<hex>`, a
    /// component URL, or a pushed name.
    pub component: String,
    /// How its task runs are treated.
    pub policy: TaskPolicy,
}

impl<'de> Deserialize<'de> for TaskSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            component: String,
            #[serde(default, with = "super::deployment::optional_duration")]
            timeout: Option<Duration>,
            #[serde(default, deserialize_with = "optional_size")]
            memory: Option<u64>,
            #[serde(default)]
            retries: u32,
            #[serde(default, deserialize_with = "one_or_many_durations")]
            retry_delay: Vec<Duration>,
            #[serde(default)]
            retry_backoff: Option<Backoff>,
            #[serde(default, deserialize_with = "cache_policy")]
            cache: Option<CachePolicy>,
        }
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = TaskSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a component (`./task.wasm`, `sha256:...`) or a mapping with `component:` and its settings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TaskSpec, E> {
                Ok(TaskSpec { component: v.to_owned(), policy: TaskPolicy::default() })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<TaskSpec, A::Error> {
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if !full.retry_delay.is_empty() && full.retry_backoff.is_some() {
                    return Err(de::Error::custom(
                        "a task has either `retry_delay` (a wait or a list of waits) or `retry_backoff`, not both",
                    ));
                }
                Ok(TaskSpec {
                    component: full.component,
                    policy: TaskPolicy {
                        timeout: full.timeout,
                        memory: full.memory,
                        retries: full.retries,
                        retry_delay: full.retry_delay,
                        retry_backoff: full.retry_backoff,
                        cache: full.cache,
                    },
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A task component as applied: the component by digest, and its policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskComponentRef {
    /// The component.
    pub component: Digest,
    /// How its task runs are treated.
    #[serde(flatten)]
    pub policy: TaskPolicy,
}

impl<'de> Deserialize<'de> for TaskComponentRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Deployments applied before task policies existed hold the digest alone.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Digest(Digest),
            Full {
                component: Digest,
                #[serde(flatten)]
                policy: TaskPolicy,
            },
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Digest(component) => TaskComponentRef { component, policy: TaskPolicy::default() },
            Stored::Full { component, policy } => TaskComponentRef { component, policy },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_varies_within_its_jitter() {
        let backoff =
            Backoff { initial: Duration::from_secs(1), factor: 2.0, max: Duration::from_secs(10), jitter: 0.5 };
        assert_eq!(backoff.delay(1, 0.5), Duration::from_secs(1));
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(4));
        assert_eq!(backoff.delay(10, 0.5), Duration::from_secs(10), "capped at max");
        assert_eq!(backoff.delay(2, 0.0), Duration::from_secs(1), "-50% of 2s");
        assert_eq!(backoff.delay(2, 1.0), Duration::from_secs(3), "+50% of 2s");
    }

    #[test]
    fn a_delay_list_repeats_its_last_entry() {
        let policy = TaskPolicy {
            retry_delay: vec![Duration::from_millis(10), Duration::from_millis(50)],
            ..TaskPolicy::default()
        };
        let delays: Vec<u128> = (1..=4).map(|n| policy.retry_delay(n, 0.3).as_millis()).collect();
        assert_eq!(delays, [10, 50, 50, 50]);
        assert_eq!(TaskPolicy::default().retry_delay(1, 0.3), Duration::ZERO);
    }

    #[test]
    fn stored_task_references_of_either_form_read_back() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let old: TaskComponentRef = serde_json::from_value(serde_json::json!(digest)).expect("digest alone");
        assert_eq!(old.policy, TaskPolicy::default());
        let new = TaskComponentRef {
            component: old.component.clone(),
            policy: TaskPolicy { retries: 2, timeout: Some(Duration::from_secs(5)), ..TaskPolicy::default() },
        };
        let json = serde_json::to_value(&new).expect("serializes");
        assert_eq!(json["retries"], 2);
        assert_eq!(serde_json::from_value::<TaskComponentRef>(json).expect("reads back"), new);
    }
}
