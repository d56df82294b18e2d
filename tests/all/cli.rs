//! The real `weft` binary: output, exit codes, log formats and help.

use serde_json::Value;

use crate::fixtures::{EXAMPLE_ETL, EXAMPLE_HELLO, PANICS};
use crate::{stderr, stdout, weft_output};

#[test]
fn weft_run_prints_the_result_on_stdout_and_logs_on_stderr() {
    let output = weft_output(&["run", EXAMPLE_ETL]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "[10,20,30]\n");
    let err = stderr(&output);
    assert!(err.contains("etl/load | Here's your data: [10, 20, 30] rows=3"), "{err}");
    assert!(err.contains("Finished in state Completed"), "{err}");
    assert!(!err.contains('\u{1b}'), "no colours when stderr is not a terminal: {err}");

    let output = weft_output(&["run", EXAMPLE_HELLO, "-p", "name=Ford"]);
    assert_eq!(stdout(&output), "\"Hello, Ford!\"\n");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let output = weft_output(&["run", EXAMPLE_ETL, "--log-format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<Value> = stderr(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let data = lines.iter().find(|l| l["message"] == "Here's your data: [10, 20, 30]").expect("data line");
    assert_eq!(data["level"], "info");
    assert_eq!(data["task_name"], "load");
    assert_eq!(data["fields"], serde_json::json!([["rows", "3"]]));
    assert!(data["flow_run_id"].as_str().is_some_and(|id| id.len() == 26), "a ULID: {data}");
    assert!(data["time"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339 UTC: {data}");
}

#[test]
fn a_failed_run_exits_1_with_its_reason() {
    let output = weft_output(&["run", PANICS]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("Finished in state Failed: panicked at src/bin/panics.rs:5:5: boom"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn log_level_filters_what_is_shown() {
    let output = weft_output(&["run", EXAMPLE_ETL, "--log-level", "warn"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "");
}

#[test]
fn bad_usage_exits_2_and_says_how_to_fix_it() {
    let output = weft_output(&["run"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("<FLOW>"), "{}", stderr(&output));

    let output = weft_output(&["run", EXAMPLE_HELLO, "--timeout", "soon"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("write a duration such as 30s"), "{}", stderr(&output));

    let output = weft_output(&["run", EXAMPLE_HELLO, "--memory", "lots"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("write a size such as 256MiB"), "{}", stderr(&output));

    let output = weft_output(&["run", EXAMPLE_HELLO, "-p", "name"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("write `-p name=VALUE`"), "{}", stderr(&output));
}

#[test]
fn help_explains_the_commands() {
    let output = weft_output(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    assert!(help.contains("WebAssembly components"), "{help}");
    assert!(help.contains("run  "), "{help}");

    let output = weft_output(&["run", "--help"]);
    let help = stdout(&output);
    for expected in
        ["--param <KEY=VALUE>", "--params-file <FILE>", "--timeout <DURATION>", "--memory <SIZE>", "Exit status:"]
    {
        assert!(help.contains(expected), "`{expected}` missing from:\n{help}");
    }
}
