//! The names of the metrics weft records (the agent serves them on
//! `/metrics`; the store and the Kubernetes client record into them too), in
//! one place for dashboards to look them up.

/// Runs claimed, by `deployment` and `pool`.
pub const RUNS_CLAIMED: &str = "weft_agent_runs_claimed_total";
/// Runners started, by `deployment`.
pub const RUNS_LAUNCHED: &str = "weft_agent_runs_launched_total";
/// Runs that ended while in the agent's hand, by `deployment` and `state`.
pub const RUNS_ENDED: &str = "weft_agent_runs_ended_total";
/// Seconds from a run being due to its claim.
pub const CLAIM_LATENCY: &str = "weft_agent_claim_latency_seconds";
/// Runs the agent has in hand now: launched, waiting to launch, adopted.
pub const RUNS_IN_HAND: &str = "weft_agent_runs_in_hand";
/// Kubernetes API requests, by `verb` and `status` (the HTTP status, or
/// `error` when no answer came).
pub const KUBE_REQUESTS: &str = "weft_kube_requests_total";
/// Store requests, by `operation`.
pub const STORE_REQUESTS: &str = "weft_store_requests_total";
/// Store requests that failed (after the store client's retries), by
/// `operation`.
pub const STORE_ERRORS: &str = "weft_store_errors_total";
