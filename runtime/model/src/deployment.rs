//! Deployments: the deployment file (`weft.yaml`) as written, and the
//! deployment as applied to the store. Parsing checks every value where it
//! stands, so errors carry the file's line and column.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::{Digest, Parameters, TaskComponentRef, TaskSpec};

/// A deployment file: one or more deployments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    /// The deployments, in file order.
    pub deployments: Vec<DeploymentSpec>,
}

/// One deployment as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// Its name: letters, digits, `-`, `_`, `.`.
    #[serde(deserialize_with = "name")]
    pub name: serde_saphyr::Spanned<String>,
    /// What it says it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The flow component: a path (relative to the file), `sha256:<hex>`, a
    /// component URL, or a pushed name.
    pub flow: String,
    /// Default parameters, checked against the flow's schema on deploy.
    #[serde(default)]
    pub parameters: Parameters,
    /// Task components by the name the flow calls them: references like
    /// `flow`, alone or with a timeout, memory limit and retries.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskSpec>,
    /// At most this many task components of one run at once; default: the
    /// runner's core count.
    #[serde(default, deserialize_with = "positive")]
    pub task_concurrency: Option<u32>,
    /// When runs are scheduled: one schedule or a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub schedule: Vec<Schedule>,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// How many times a failed flow run is retried, as a new attempt.
    #[serde(default)]
    pub retries: u32,
    /// How long after a failure the next attempt is scheduled.
    #[serde(default, with = "duration")]
    pub retry_delay: Duration,
    /// At most this many runs of the deployment at once.
    #[serde(default)]
    pub concurrency_limit: Option<u32>,
    /// What each run may use and reach.
    #[serde(default)]
    pub sandbox: Sandbox,
    /// Where runs execute: `process` or `kubernetes` (the default pool of
    /// that type), or a mapping with its job variables. Default: `process`,
    /// or the type of `work_pool`.
    #[serde(default)]
    pub infrastructure: Option<Infrastructure>,
    /// The work pool its runs go to; default: the pool named after
    /// `infrastructure`.
    #[serde(default)]
    pub work_pool: Option<super::WorkPoolSpec>,
}

/// A schedule: a cron expression in a time zone, or a fixed interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A cron expression (5 fields, or 6 with seconds): `0 6 * * *`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "cron")]
    pub cron: Option<String>,
    /// The time zone of the cron expression (IANA name); default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "timezone")]
    pub timezone: Option<String>,
    /// A fixed interval between runs: `15m`, `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_duration")]
    pub interval: Option<Duration>,
    /// False pauses the schedule.
    #[serde(default = "yes")]
    pub active: bool,
}

impl Schedule {
    /// Its times in `(from, to]`, at most `max` of them. Intervals count
    /// from the Unix epoch, so every agent derives the same times.
    pub fn times(&self, from: SystemTime, to: SystemTime, max: usize) -> Vec<SystemTime> {
        let millis = |time: SystemTime| time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut times = Vec::new();
        if let Some(every) = self.interval {
            let step = every.as_millis().max(1) as u64;
            let mut t = (millis(from) / step + 1) * step;
            while t <= millis(to) && times.len() < max {
                times.push(UNIX_EPOCH + Duration::from_millis(t));
                t += step;
            }
        } else if let Some(expression) = &self.cron {
            let Ok(cron) = check_cron(expression) else { return times };
            let start = chrono::DateTime::<chrono::Utc>::from(from).with_timezone(&self.zone());
            for next in cron.iter_after(start) {
                let next = SystemTime::from(next.with_timezone(&chrono::Utc));
                if next > to || times.len() >= max {
                    break;
                }
                times.push(next);
            }
        }
        times
    }

    /// Its next `count` times after `now`.
    pub fn next(&self, now: SystemTime, count: usize) -> Vec<SystemTime> {
        // Far enough for a yearly cron expression.
        self.times(now, now + Duration::from_secs(5 * 366 * 24 * 3600), count)
    }

    /// The schedule in words: "Every 15 minutes", "At 06:00 (Europe/Berlin)".
    pub fn describe(&self) -> String {
        let mut words = match (&self.cron, self.interval) {
            (_, Some(every)) => format!("Every {}", humantime::format_duration(every)),
            (Some(expression), None) => match check_cron(expression) {
                Ok(cron) => cron.describe().trim_end_matches('.').to_owned(),
                Err(_) => expression.clone(),
            },
            (None, None) => "Never".to_owned(),
        };
        if self.cron.is_some() && self.interval.is_none() {
            words.push_str(&format!(" ({})", self.zone()));
        }
        if !self.active {
            words.push_str(", paused");
        }
        words
    }

    fn zone(&self) -> chrono_tz::Tz {
        self.timezone.as_deref().and_then(|z| z.parse().ok()).unwrap_or(chrono_tz::UTC)
    }
}

fn yes() -> bool {
    true
}

/// What a run may use and reach. Nothing is granted unless listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    /// Wall-clock limit of a run.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Memory limit of a run, in bytes (`512MiB` in the file).
    #[serde(default = "default_memory", deserialize_with = "size")]
    pub memory: u64,
    /// Environment variables passed to the guest, by name, with the value the
    /// runner has.
    #[serde(default, deserialize_with = "env_names")]
    pub env: Vec<String>,
    /// Host directories the guest may open.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Hosts the guest may connect to, as `host:port`.
    #[serde(default, deserialize_with = "hosts")]
    pub hosts: Vec<String>,
    /// The longest log line kept, in bytes (`16KiB` in the file); longer
    /// lines, and error messages, are cut and marked.
    #[serde(default = "default_log_line", deserialize_with = "byte_limit")]
    pub max_log_line: u64,
    /// The most log a run keeps, in bytes (`100MiB`); later lines are
    /// dropped and counted.
    #[serde(default = "default_log_volume", deserialize_with = "byte_limit")]
    pub max_log_volume: u64,
    /// The largest result a run may return, in bytes (`16MiB`); a larger one
    /// fails the run.
    #[serde(default = "default_result", deserialize_with = "byte_limit")]
    pub max_result: u64,
}

fn default_log_line() -> u64 {
    crate::sandbox::DEFAULT_LOG_LINE
}

fn default_log_volume() -> u64 {
    crate::sandbox::DEFAULT_LOG_VOLUME
}

fn default_result() -> u64 {
    crate::sandbox::DEFAULT_RESULT
}

fn default_timeout() -> Duration {
    Duration::from_secs(3600)
}

fn default_memory() -> u64 {
    256 << 20
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            timeout: default_timeout(),
            memory: default_memory(),
            env: Vec::new(),
            dirs: Vec::new(),
            hosts: Vec::new(),
            max_log_line: default_log_line(),
            max_log_volume: default_log_volume(),
            max_result: default_result(),
        }
    }
}

/// A host directory granted to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it; default: the same path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
    /// Whether the guest may only read.
    #[serde(default)]
    pub read_only: bool,
}

/// Where a deployment's runs execute.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Infrastructure {
    /// A child process of the agent.
    #[default]
    Process,
    /// A Kubernetes Job per run.
    Kubernetes {
        /// Values for the job template's variables.
        #[serde(default)]
        job_variables: BTreeMap<String, serde_json::Value>,
        /// A job template file of the deployment's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_template: Option<String>,
    },
}

impl Infrastructure {
    /// `process` or `kubernetes`.
    pub fn kind(&self) -> &'static str {
        match self {
            Infrastructure::Process => "process",
            Infrastructure::Kubernetes { .. } => "kubernetes",
        }
    }
}

impl<'de> Deserialize<'de> for Infrastructure {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
        enum Full {
            Process,
            Kubernetes {
                #[serde(default)]
                job_variables: BTreeMap<String, serde_json::Value>,
                #[serde(default)]
                job_template: Option<String>,
            },
        }
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Infrastructure;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`process`, `kubernetes`, or a mapping with `type: process|kubernetes`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Infrastructure, E> {
                match v {
                    "process" => Ok(Infrastructure::Process),
                    "kubernetes" => {
                        Ok(Infrastructure::Kubernetes { job_variables: BTreeMap::new(), job_template: None })
                    }
                    other => {
                        Err(E::custom(format!("unknown infrastructure `{other}`: write `process` or `kubernetes`")))
                    }
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Infrastructure, A::Error> {
                Ok(match Full::deserialize(de::value::MapAccessDeserializer::new(map))? {
                    Full::Process => Infrastructure::Process,
                    Full::Kubernetes { job_variables, job_template } => {
                        Infrastructure::Kubernetes { job_variables, job_template }
                    }
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A deployment as applied to the store (`deployments/<name>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Its name.
    pub name: String,
    /// What it says it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The flow component.
    pub flow: Digest,
    /// The flow's name.
    pub flow_name: String,
    /// The flow's parameter schema, kept so parameters are checked without
    /// downloading the component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_schema: Option<serde_json::Value>,
    /// Default parameters.
    #[serde(default)]
    pub parameters: Parameters,
    /// Task components by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, TaskComponentRef>,
    /// Task components of one run at once, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_concurrency: Option<u32>,
    /// Schedules.
    #[serde(default)]
    pub schedule: Vec<Schedule>,
    /// Labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Retries of a failed flow run.
    #[serde(default)]
    pub retries: u32,
    /// Delay before a retry.
    #[serde(default, with = "duration")]
    pub retry_delay: Duration,
    /// Runs at once, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<u32>,
    /// Sandbox grants and limits.
    #[serde(default)]
    pub sandbox: Sandbox,
    /// Where runs execute.
    #[serde(default)]
    pub infrastructure: Infrastructure,
    /// The work pool its runs go to, when not the default pool of its
    /// infrastructure type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_pool: Option<String>,
    /// The queue within the pool, when not `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_queue: Option<String>,
    /// The text of the deployment's own job template file, read on deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template: Option<String>,
    /// When it was last applied.
    #[serde(with = "super::rfc3339")]
    pub updated: SystemTime,
}

impl Deployment {
    /// The work pool its runs go to.
    pub fn pool_name(&self) -> &str {
        self.work_pool.as_deref().unwrap_or(self.infrastructure.kind())
    }

    /// The queue within its pool its runs go to.
    pub fn queue_name(&self) -> &str {
        self.work_queue.as_deref().unwrap_or(super::DEFAULT_QUEUE)
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Schedule>, D::Error> {
    struct Visitor;
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Vec<Schedule>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a schedule (`cron: ...` or `interval: ...`) or a list of them")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Vec<Schedule>, A::Error> {
            Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Vec<Schedule>, A::Error> {
            Schedule::deserialize(de::value::MapAccessDeserializer::new(map)).map(|s| vec![s])
        }
    }
    let schedules = d.deserialize_any(Visitor)?;
    for schedule in &schedules {
        match (&schedule.cron, &schedule.interval) {
            (Some(_), Some(_)) => {
                return Err(de::Error::custom("a schedule has either `cron` or `interval`, not both"));
            }
            (None, None) => return Err(de::Error::custom("a schedule needs `cron: \"0 6 * * *\"` or `interval: 15m`")),
            (None, Some(_)) if schedule.timezone.is_some() => {
                return Err(de::Error::custom("`timezone` applies to `cron` schedules only"));
            }
            (None, Some(interval)) if *interval < Duration::from_secs(1) => {
                return Err(de::Error::custom("an interval must be at least 1s"));
            }
            _ => {}
        }
    }
    Ok(schedules)
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<serde_saphyr::Spanned<String>, D::Error> {
    let name = serde_saphyr::Spanned::<String>::deserialize(d)?;
    let ok = !name.value.is_empty()
        && name.value.len() <= 63
        && name.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.value.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(name)
    } else {
        Err(de::Error::custom(format!(
            "deployment name `{}` must start with a letter or digit and hold only letters, digits, `-`, `_` and `.` (63 at most)",
            name.value
        )))
    }
}

fn cron<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    check_cron(&text).map_err(de::Error::custom)?;
    Ok(Some(text))
}

/// Checks a cron expression; the error says what a valid one looks like.
pub fn check_cron(text: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Optional).build().parse(text).map_err(|e| {
        format!(
            "invalid cron expression `{text}` ({e}): write 5 fields such as `0 6 * * *` (minute hour day month weekday)"
        )
    })
}

fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<chrono_tz::Tz>().map_err(|_| {
        de::Error::custom(format!("unknown time zone `{text}`: write an IANA name such as `Europe/Berlin` or `UTC`"))
    })?;
    Ok(Some(text))
}

/// A size in bytes, or text such as `512MiB`, checked to be a memory limit
/// a guest can have.
pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Visitor;
    impl de::Visitor<'_> for Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a size such as 256MiB or 1GiB")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            super::check_memory(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            Err(E::custom(format!("{v} is negative: write a size such as 256MiB or 1GiB")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            super::parse_memory(v).map_err(E::custom)
        }
    }
    d.deserialize_any(Visitor)
}

/// A size in bytes, or text such as `16KiB`, at least 1 byte.
fn byte_limit<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Visitor;
    impl de::Visitor<'_> for Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a size such as 16KiB or 100MiB")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            super::parse_byte_limit(&v.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            super::parse_byte_limit(&v.to_string()).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            super::parse_byte_limit(v).map_err(E::custom)
        }
    }
    d.deserialize_any(Visitor)
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(de::Error::custom("must be at least 1: it is how many task components may run at once"));
    }
    Ok(Some(n))
}

fn env_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    for name in &names {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let fix = match name.split_once('=') {
                Some((key, _)) if !key.is_empty() => {
                    format!("list the name alone (`{key}`): the guest gets the value the runner has in its environment")
                }
                _ => "a name is letters, digits and `_`, not starting with a digit, such as `API_TOKEN`".to_owned(),
            };
            return Err(de::Error::custom(format!("`{name}` is not an environment variable name: {fix}")));
        }
    }
    Ok(names)
}

fn hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let hosts = Vec::<String>::deserialize(d)?;
    for host in &hosts {
        let valid = host.rsplit_once(':').is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(de::Error::custom(format!("host `{host}` needs a port: write `api.example.com:443`")));
        }
    }
    Ok(hosts)
}

/// Durations written as `30s`, `5m`, `1h`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes a duration as `1h 30m`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// Reads `30s`, `5m`, `1h 30m`; a bare number is refused, as on the
    /// command line.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as 30s, 5m or 1h")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                crate::parse_duration(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

pub(super) mod optional_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

/// Why a deployment file was refused: the file, the line and column, what
/// is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", position.map(|(l, c)| format!(" line {l} column {c}")).unwrap_or_default())]
pub struct DeploymentFileError {
    /// The file.
    pub file: String,
    /// Line and column, from 1.
    pub position: Option<(u64, u64)>,
    /// What is wrong, and the fix.
    pub message: String,
}

impl DeploymentFile {
    /// Parses a deployment file. `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<DeploymentFile, DeploymentFileError> {
        let parsed: DeploymentFile = serde_saphyr::from_str(text).map_err(|e| {
            let position = e.location().map(|l| (l.line(), l.column()));
            let message = match shape_problem(text) {
                Some(problem) => format!("{problem}; a deployment file looks like this:\n{EXAMPLE}"),
                None => explain(&e, position.and_then(|(line, column)| field_at(text, line, column))),
            };
            DeploymentFileError { file: file.to_owned(), position, message }
        })?;
        let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
        for spec in &parsed.deployments {
            let line = spec.name.referenced.line();
            if let Some(first) = seen.insert(&spec.name.value, line) {
                return Err(DeploymentFileError {
                    file: file.to_owned(),
                    position: Some((line, spec.name.referenced.column())),
                    message: format!(
                        "deployment `{}` is defined twice (first on line {first}); give each a name of its own",
                        spec.name.value
                    ),
                });
            }
        }
        if parsed.deployments.is_empty() {
            return Err(DeploymentFileError {
                file: file.to_owned(),
                position: None,
                message: "`deployments` is empty: add at least one deployment with a `name` and a `flow`".into(),
            });
        }
        Ok(parsed)
    }
}

/// The smallest deployment file, shown when a file is not shaped like one.
const EXAMPLE: &str = "deployments:\n  - name: hello\n    flow: ./hello.wasm";

/// What is wrong with the file's overall shape, if that is what is wrong:
/// empty, a top level that is not a mapping, `deployments` not a list.
fn shape_problem(text: &str) -> Option<String> {
    fn kind(value: &serde_json::Value) -> &'static str {
        match value {
            serde_json::Value::Null => "empty",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "text",
            serde_json::Value::Array(_) => "a list",
            serde_json::Value::Object(_) => "a mapping",
        }
    }
    let value: serde_json::Value = match serde_saphyr::from_str(text) {
        Ok(value) => value,
        // Not YAML at all: the syntax error says more.
        Err(_) if !text.trim().is_empty() => return None,
        Err(_) => serde_json::Value::Null,
    };
    match &value {
        serde_json::Value::Null => Some("the file is empty".into()),
        serde_json::Value::Object(map) => match map.get("deployments") {
            None if map.len() == 1 || map.contains_key("name") || map.contains_key("flow") => {
                Some("the file has no `deployments:` list at its top level".into())
            }
            Some(list @ (serde_json::Value::Null | serde_json::Value::Object(_) | serde_json::Value::String(_))) => {
                Some(format!("`deployments` is {}, not a list of deployments", kind(list)))
            }
            _ => None,
        },
        other => Some(format!("the top level is {}, not a mapping with a `deployments:` list", kind(other))),
    }
}

/// The key whose value starts at `line`, `column` (from 1): in `retries: three`
/// or `{timeout: 5}`, the key just before the value.
fn field_at(text: &str, line: u64, column: u64) -> Option<String> {
    let line = text.lines().nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let before: String = line.chars().take(usize::try_from(column).ok()?.saturating_sub(1)).collect();
    let key = before.trim_end().strip_suffix(':')?;
    let start = key.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).map_or(0, |i| i + 1);
    let key = &key[start..];
    (!key.is_empty()).then(|| key.to_owned())
}

/// The parser's message, with a did-you-mean for unknown fields, the field
/// and the expected type for values of the wrong type, and without the
/// rendered snippet (the position is given separately).
fn explain(error: &serde_saphyr::Error, field: Option<String>) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or(&text).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 4 column 5: message": the position is reported on its own.
    let message = match first.split_once(": ") {
        Some((position, message)) if position.starts_with("line ") => message,
        _ => first,
    };
    if let Some(kind) = message.strip_prefix("invalid ") {
        let (expected, example) = match kind {
            "u8" | "u16" | "u32" | "u64" | "usize" => ("a whole number, 0 or more", "3"),
            "i8" | "i16" | "i32" | "i64" | "isize" => ("a whole number", "3"),
            "f32" | "f64" => ("a number", "0.5"),
            "bool" => ("true or false", "true"),
            _ => ("", ""),
        };
        if !expected.is_empty() {
            return match field {
                Some(field) => format!("`{field}` must be {expected}, such as `{field}: {example}`"),
                None => format!("expected {expected}, such as `{example}`"),
            };
        }
    }
    let Some(rest) = message.strip_prefix("unknown field `") else { return message.to_owned() };
    let Some((field, expected)) = rest.split_once('`') else { return message.to_owned() };
    let candidates: Vec<&str> = expected
        .trim_start_matches(',')
        .trim()
        .trim_start_matches("expected one of")
        .trim_start_matches("expected")
        .split(',')
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty())
        .collect();
    match super::closest(field, candidates.iter().copied()) {
        Some(suggestion) => format!("unknown field `{field}`: did you mean `{suggestion}`?"),
        None => format!("unknown field `{field}`: expected one of {}", candidates.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_times_follow_cron_in_its_zone_and_intervals_on_the_epoch() {
        let at = |s: &str| SystemTime::from(chrono::DateTime::parse_from_rfc3339(s).expect("time"));
        let cron = Schedule {
            cron: Some("0 6 * * *".into()),
            timezone: Some("Europe/Berlin".into()),
            interval: None,
            active: true,
        };
        let times = cron.times(at("2026-11-22T00:00:00Z"), at("2026-11-24T00:00:00Z"), 10);
        assert_eq!(times, [at("2026-11-22T05:00:00Z"), at("2026-11-23T05:00:00Z")]);

        let every = Schedule { cron: None, timezone: None, interval: Some(Duration::from_secs(900)), active: true };
        let times = every.times(at("2026-11-22T00:00:00Z"), at("2026-11-22T00:45:00Z"), 10);
        assert_eq!(times, [at("2026-11-22T00:15:00Z"), at("2026-11-22T00:30:00Z"), at("2026-11-22T00:45:00Z")]);
        assert_eq!(every.times(at("2026-11-22T00:00:00Z"), at("2026-11-23T00:00:00Z"), 5).len(), 5);
        assert_eq!(every.describe(), "Every 15m");
        assert_eq!(cron.describe(), "At 06:00 (Europe/Berlin)");
        let paused = Schedule { active: false, ..every.clone() };
        assert_eq!(paused.describe(), "Every 15m, paused");
        assert_eq!(every.next(at("2026-11-22T00:00:00Z"), 3).len(), 3);
    }

    const FILE: &str = r#"
deployments:
  - name: etl-daily
    flow: ./etl.wasm
    parameters: {count: 3}
    schedule:
      cron: "0 6 * * *"
      timezone: Europe/Berlin
    sandbox: {timeout: 10m, memory: 512MiB, env: [API_TOKEN], hosts: ["api.example.com:443"]}
  - name: etl-hourly
    flow: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    schedule:
      - interval: 1h
      - cron: "*/5 * * * *"
        active: false
    concurrency_limit: 2
    infrastructure:
      type: kubernetes
      job_variables: {namespace: flows}
"#;

    #[test]
    fn work_pool_is_written_as_in_prefect_yaml() {
        let text = "deployments:\n  - name: t\n    flow: t.wasm\n    work_pool:\n      name: gpu\n      work_queue_name: high\n      job_variables: {cpu_request: 500m}\n";
        let file = DeploymentFile::parse(text, "weft.yaml").expect("parses");
        let pool = file.deployments[0].work_pool.clone().expect("a pool");
        assert_eq!((pool.name.as_str(), pool.queue.as_deref()), ("gpu", Some("high")));
        assert_eq!(pool.job_variables["cpu_request"], "500m");
        assert!(file.deployments[0].infrastructure.is_none(), "the pool's type decides");
    }

    #[test]
    fn a_file_with_several_deployments_parses() {
        let file = DeploymentFile::parse(FILE, "weft.yaml").expect("parses");
        assert_eq!(file.deployments.len(), 2);
        let daily = &file.deployments[0];
        assert_eq!(daily.name.value, "etl-daily");
        assert_eq!(daily.schedule[0].timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(daily.sandbox.memory, 512 << 20);
        assert_eq!(daily.sandbox.timeout, Duration::from_secs(600));
        let hourly = &file.deployments[1];
        assert_eq!(hourly.schedule.len(), 2);
        assert_eq!(hourly.schedule[0].interval, Some(Duration::from_secs(3600)));
        assert!(!hourly.schedule[1].active);
        assert_eq!(hourly.infrastructure.as_ref().map(Infrastructure::kind), Some("kubernetes"));
    }

    #[test]
    fn anchors_and_merge_keys_work() {
        let text = "deployments:\n  - &base\n    name: a\n    flow: a.wasm\n    retries: 2\n    retry_delay: 30s\n  - <<: *base\n    name: b\n";
        let file = DeploymentFile::parse(text, "weft.yaml").expect("parses");
        let b = &file.deployments[1];
        assert_eq!((b.name.value.as_str(), b.flow.as_str(), b.retries), ("b", "a.wasm", 2));
        assert_eq!(b.retry_delay, Duration::from_secs(30));
    }

    fn error(text: &str) -> DeploymentFileError {
        DeploymentFile::parse(text, "weft.yaml").expect_err("refused")
    }

    #[test]
    fn errors_name_the_line_the_field_and_the_fix() {
        let e = error("deployments:\n  - name: a\n    flow: a.wasm\n    schedul:\n      interval: 1h\n");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
        assert!(e.to_string().starts_with("weft.yaml line 4 column"), "{e}");
        assert!(e.message.contains("unknown field `schedul`: did you mean `schedule`?"), "{e}");

        let e = error("deployments:\n  - name: a\n    flow: a.wasm\n    schedule: {cron: \"61 * * * *\"}\n");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
        assert!(e.message.contains("invalid cron expression `61 * * * *`"), "{e}");

        let e = error(
            "deployments:\n  - name: a\n    flow: a.wasm\n    schedule: {cron: \"0 6 * * *\", timezone: Mars/Olympus}\n",
        );
        assert!(e.message.contains("unknown time zone `Mars/Olympus`"), "{e}");

        let e = error("deployments:\n  - name: a\n    flow: a.wasm\n    sandbox: {memory: lots}\n");
        assert!(e.message.contains("invalid size `lots`"), "{e}");

        let e = error("deployments:\n  - name: a\n    flow: a.wasm\n  - name: a\n    flow: b.wasm\n");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
        assert!(e.message.contains("deployment `a` is defined twice (first on line 2)"), "{e}");

        let e = error("deployments:\n  - name: a\n    flow: a.wasm\n    infrastructure: docker\n");
        assert!(e.message.contains("unknown infrastructure `docker`"), "{e}");

        let e = error("deployments:\n  - name: 'no spaces'\n    flow: a.wasm\n");
        assert!(e.message.contains("must start with a letter or digit"), "{e}");

        for bad in ["three", "-1"] {
            let e = error(&format!("deployments:\n  - name: a\n    flow: a.wasm\n    retries: {bad}\n"));
            assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
            assert_eq!(e.message, "`retries` must be a whole number, 0 or more, such as `retries: 3`", "{e}");
        }
        let e = error("deployments:\n  - name: a\n    flow: a.wasm\n    sandbox: {timeout: 5}\n");
        assert!(e.message.contains("`5` has no unit: write 5s, 5m or 5h"), "{e}");
        let e = error("deployments:\n  - name: a\n    flow: a.wasm\n    sandbox: {memory: 1TiB}\n");
        assert!(e.message.contains("from 64KiB (one WebAssembly page) to 4GiB"), "{e}");
        for (env, fix) in [("\"A=B\"", "list the name alone (`A`)"), ("\"\"", "letters, digits and `_`")] {
            let e = error(&format!("deployments:\n  - name: a\n    flow: a.wasm\n    sandbox: {{env: [{env}]}}\n"));
            assert!(e.message.contains("is not an environment variable name") && e.message.contains(fix), "{e}");
        }
        for (text, problem) in [
            ("", "the file is empty"),
            ("# nothing yet\n", "the file is empty"),
            ("- name: a\n  flow: a.wasm\n", "the top level is a list, not a mapping"),
            ("name: a\nflow: a.wasm\n", "the file has no `deployments:` list"),
            ("deployments: hello\n", "`deployments` is text, not a list"),
        ] {
            let e = error(text);
            assert!(e.message.starts_with(problem), "{text:?}: {e}");
            assert!(e.message.ends_with(EXAMPLE), "{text:?}: {e}");
        }

        let e = error("deployments:\n  - name: a\n    flow: [a\n");
        assert!(e.position.is_some(), "a syntax error has a position: {e}");
    }
}
