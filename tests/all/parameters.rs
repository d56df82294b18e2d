//! Parameters are checked against the schema embedded in the component before
//! anything is instantiated, and errors name the parameter.

use serde_json::json;
use weft::engine::inspect;
use weft::model::FlowRunOutcome;
use weft::runner::FlowRunRequest;

use crate::fixtures::{EXAMPLE_HELLO, PARAMS};
use crate::{load, run, stderr, stdout, weft_output};

#[test]
fn the_schema_travels_in_a_custom_section() {
    let bytes = std::fs::read(PARAMS).expect("fixture");
    let info = inspect(&bytes, PARAMS).expect("a component");
    let schema = info.parameters_schema.expect("the SDK embeds the schema");
    assert_eq!(schema["required"], json!(["name", "n"]));
    assert_eq!(schema["properties"]["n"]["maximum"], 255);
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(info.flow_name.as_deref(), Some("params"));

    let hello = inspect(&std::fs::read(EXAMPLE_HELLO).expect("fixture"), EXAMPLE_HELLO).expect("a component");
    let schema = hello.parameters_schema.expect("schema");
    assert_eq!(schema["properties"]["name"]["description"], "Who to greet.");
    assert_eq!(schema["required"], json!([]));
}

#[test]
fn missing_and_mistyped_parameters_are_refused_with_their_names() {
    let flow = load(PARAMS);
    let error = FlowRunRequest::new(&flow, json!({"n": "ten"})).expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("flow `params`: parameter `name` is required but missing"), "{text}");
    assert!(text.contains("flow `params`: parameter `n` must be an integer, got \"ten\""), "{text}");
    let error = FlowRunRequest::new(&flow, json!({"name": "x", "n": 2, "nmae": 1})).expect_err("refused");
    assert!(error.to_string().contains("parameter `nmae` is not a parameter of this flow"), "{error}");
    let error = FlowRunRequest::new(&flow, json!({"name": "x", "n": 256})).expect_err("refused");
    assert!(error.to_string().contains("parameter `n` must be at most 255, got 256"), "{error}");
    let error = FlowRunRequest::new(&flow, json!([1])).expect_err("refused");
    assert!(error.to_string().contains("must be a JSON object"), "{error}");
}

#[test]
fn the_cli_refuses_bad_parameters_before_running_anything() {
    let output = weft_output(&["run", PARAMS, "-p", "n=ten"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("parameter `name` is required"), "{err}");
    assert!(err.contains("parameter `n` must be an integer, got \"ten\""), "{err}");
    assert!(!err.contains("Beginning flow run"), "nothing may run: {err}");
    assert!(stdout(&output).is_empty());

    // A string parameter keeps digits as text; an integer parameter gets a number.
    let output = weft_output(&["run", PARAMS, "-p", "name=007", "-p", "n=4"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON result");
    assert_eq!(result, json!({"name": "007", "n": 4, "tag": null}));
}

#[test]
fn a_parameters_file_is_read_and_overridden_by_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("params.json");
    std::fs::write(&file, r#"{"name": "file", "n": 2, "tag": "t"}"#).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let output = weft_output(&["run", PARAMS, "--params-file", path, "-p", "n=6"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON result");
    assert_eq!(result, json!({"name": "file", "n": 6, "tag": "t"}));

    std::fs::write(&file, "[1, 2]").expect("write");
    let output = weft_output(&["run", PARAMS, "--params-file", path]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("must hold a JSON object"), "{}", stderr(&output));
    std::fs::write(&file, "{name: x}").expect("write");
    let output = weft_output(&["run", PARAMS, "--params-file", path]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is not valid JSON"), "{}", stderr(&output));
}

#[tokio::test]
async fn what_only_the_guest_checks_fails_the_run_naming_the_field() {
    // `n` must be even: the schema cannot say so, the guest's decoder does.
    let (report, _) = run(PARAMS, json!({"name": "x", "n": 3}), Default::default()).await;
    let FlowRunOutcome::Failed { reason, retryable } = report.outcome else { panic!("must fail") };
    assert_eq!(reason, "invalid parameters: parameter `n`: 3 is odd, expected an even number");
    assert!(!retryable, "bad parameters are not worth a retry");
}
