//! What a run writes is capped: each log line, the run's log volume, its
//! result and its error message. A guest that floods cannot fill the store
//! or the host's memory.

use serde_json::json;
use weft::engine::Limits;
use weft::model::{FlowRunOutcome, LogSource, State};

use crate::agent::{AgentProcess, deploy, run_deployment, state, wait_for};
use crate::fixtures::FLOODS;
use crate::store::Backend;
use crate::{run, stderr};

const MARK: &str = " … [cut: longer than the log line limit]";

fn limits(line: u64, volume: u64, result: u64) -> Limits {
    Limits { log_line: line, log_volume: volume, result, ..Limits::default() }
}

#[tokio::test]
async fn long_lines_are_cut_and_a_flood_is_dropped_and_counted() {
    for stdout in [false, true] {
        // 400 lines of 4 KiB, each cut to 1 KiB; 64 KiB of log keeps about 60.
        let params = json!({"lines": 400, "line_kib": 4, "stdout": stdout});
        let (report, lines) = run(FLOODS, params, limits(1024, 64 << 10, 16 << 20)).await;
        assert!(matches!(report.outcome, FlowRunOutcome::Completed { .. }), "{:?}", report.outcome);
        let guest: Vec<_> = lines.iter().filter(|l| l.source != LogSource::Weft).collect();
        assert!(guest.iter().all(|l| l.message.len() == 1024 + MARK.len() && l.message.ends_with(MARK)));
        assert!((50..=64).contains(&guest.len()), "stdout={stdout}: {} lines kept", guest.len());
        let dropped = 400 - guest.len();
        let weft: Vec<&str> =
            lines.iter().filter(|l| l.source == LogSource::Weft).map(|l| l.message.as_str()).collect();
        assert!(weft.iter().any(|m| m.starts_with("the run's log reached its 64 KiB cap")), "{weft:?}");
        let counted = format!("{dropped} log lines (");
        assert!(weft.iter().any(|m| m.starts_with(&counted) && m.contains("were dropped")), "{weft:?}");
        assert_eq!(weft.last().copied(), Some("Finished in state Completed"));
    }
}

#[tokio::test]
async fn a_result_over_the_limit_fails_the_run_and_a_long_error_is_cut() {
    let params = json!({"lines": 0, "line_kib": 0, "result_kib": 200});
    let (report, _) = run(FLOODS, params, limits(1024, 1 << 20, 100 << 10)).await;
    let FlowRunOutcome::Failed { reason, retryable } = report.outcome else { panic!("{:?}", report.outcome) };
    assert!(reason.starts_with("its result is 200.0 KiB, over the 100 KiB limit on results"), "{reason}");
    assert!(!retryable, "the same flow returns the same result");

    let params = json!({"lines": 0, "line_kib": 0, "result_kib": 200, "fail": true});
    let (report, lines) = run(FLOODS, params, limits(1024, 1 << 20, 16 << 20)).await;
    let FlowRunOutcome::Failed { reason, .. } = report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(reason.len(), 1024 + MARK.len(), "the error is cut at the line limit");
    assert!(lines.iter().all(|l| l.message.len() <= 1024 + MARK.len()));
}

/// A deployment asks for a cap; the runner's ceiling (an agent's
/// environment) lowers it; the store keeps no more than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_ceiling_bounds_what_the_store_keeps() {
    let backend = Backend::file();
    let _dir = deploy(
        &backend,
        &format!(
            "deployments:\n  - name: floods\n    flow: {FLOODS}\n    parameters: {{lines: 2000, line_kib: 1}}\n    sandbox: {{max_log_volume: 1MiB}}\n"
        ),
    );
    let _agent = AgentProcess::start_with_env(&backend, "a", &[], &[("WEFT_MAX_LOG_VOLUME", "64KiB")]);
    let id = run_deployment(&backend, "floods", &[]);
    let store = backend.open();
    wait_for("the run to complete", std::time::Duration::from_secs(60), async || {
        state(&store, &id).await == Some(State::Completed)
    })
    .await;
    let (logs, _) = store.read_logs(&id, None).await.expect("logs");
    let guest_bytes: usize = logs.iter().filter(|l| l.source != LogSource::Weft).map(|l| l.message.len()).sum();
    assert!(guest_bytes <= 64 << 10, "{guest_bytes} bytes of guest log kept");
    assert!(logs.iter().any(|l| l.message.contains("log lines (") && l.message.contains("capped at 64 KiB")));

    // `weft run` takes the same caps as flags.
    let output = crate::weft()
        .args(["run", FLOODS, "-p", "lines=0", "-p", "line_kib=0", "-p", "result_kib=64", "--max-result", "1KiB"])
        .args(backend.args())
        .output()
        .expect("weft run");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("over the 1 KiB limit on results"), "{}", stderr(&output));
}
