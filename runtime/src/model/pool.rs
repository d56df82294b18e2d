//! Work pools: what an operator configures once for many deployments and
//! agents. A pool has a type (where its runs execute), a base job template
//! for Kubernetes pools, a concurrency limit shared by every agent that
//! serves it, and a paused flag. Deployments name a pool; agents serve
//! pools. One default pool per type, named after the type, exists without
//! anyone creating it, so `infrastructure: kubernetes` means the pool
//! `kubernetes`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Where a pool's runs execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// A child process of the agent.
    Process,
    /// A Kubernetes Job per run.
    Kubernetes,
}

impl PoolKind {
    /// Every kind, in the order `weft pool ls` shows the default pools.
    pub const ALL: [PoolKind; 2] = [PoolKind::Process, PoolKind::Kubernetes];

    /// `process` or `kubernetes`: also the name of the kind's default pool.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Process => "process",
            PoolKind::Kubernetes => "kubernetes",
        }
    }

    /// The kind whose default pool is called `name`, if it is one.
    pub fn of_default(name: &str) -> Option<PoolKind> {
        PoolKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for PoolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PoolKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        PoolKind::of_default(text).ok_or_else(|| format!("unknown pool type `{text}`: write `process` or `kubernetes`"))
    }
}

/// A work pool (`pools/<name>/<revision>.json` in the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPool {
    /// Its name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Where its runs execute.
    #[serde(rename = "type")]
    pub kind: PoolKind,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The text of its base job template (Kubernetes pools); none: weft's
    /// base template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_job_template: Option<String>,
    /// Runs of the pool at once, at most, across every agent serving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<u32>,
    /// A paused pool's runs stay Scheduled: no agent claims them.
    #[serde(default)]
    pub paused: bool,
    /// When it was last written.
    #[serde(with = "super::rfc3339")]
    pub updated: SystemTime,
}

impl WorkPool {
    /// A new pool with nothing set but its name and kind.
    pub fn new(name: &str, kind: PoolKind) -> Self {
        WorkPool {
            name: name.to_owned(),
            kind,
            description: None,
            base_job_template: None,
            concurrency_limit: None,
            paused: false,
            updated: SystemTime::UNIX_EPOCH,
        }
    }

    /// The default pool of `kind`, as it is until someone edits it.
    pub fn default_for(kind: PoolKind) -> Self {
        let mut pool = WorkPool::new(kind.as_str(), kind);
        pool.description = Some(format!("the default {kind} pool"));
        pool
    }

    /// Whether it is one of the default pools.
    pub fn is_default(&self) -> bool {
        PoolKind::of_default(&self.name) == Some(self.kind)
    }
}

/// Checks a pool name: what deployments and agents write must also be a
/// store path segment and a Kubernetes label value.
pub fn check_pool_name(name: &str) -> Result<(), String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 63 || !name.chars().all(fine) || name.starts_with(['.', '-']) {
        return Err(format!(
            "pool name `{name}` is not usable: write 1 to 63 letters, digits, `-`, `_` or `.`, starting with a \
             letter or digit"
        ));
    }
    Ok(())
}

/// A deployment's pool, as `work_pool:` in a deployment file names it (as
/// in Prefect's `prefect.yaml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPoolSpec {
    /// The pool's name.
    pub name: String,
    /// Values for the pool's job template variables (Kubernetes pools).
    #[serde(default)]
    pub job_variables: std::collections::BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pools_are_named_after_their_kind_and_names_are_checked() {
        assert_eq!(PoolKind::of_default("kubernetes"), Some(PoolKind::Kubernetes));
        assert_eq!(PoolKind::of_default("gpu"), None);
        assert!(WorkPool::default_for(PoolKind::Process).is_default());
        assert!(!WorkPool::new("process", PoolKind::Kubernetes).is_default());
        assert!(check_pool_name("gpu-eu.1").is_ok());
        for bad in ["", "-gpu", "a/b", "späti", &"x".repeat(64)] {
            assert!(check_pool_name(bad).is_err(), "{bad}");
        }
        assert!("lambda".parse::<PoolKind>().expect_err("not a kind").contains("`process` or `kubernetes`"));
    }
}
