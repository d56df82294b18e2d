//! Files that are not weft flows are refused with a clear error.

use weft::engine::ComponentError;

use crate::fixtures::{COMMAND, EXAMPLE_HELLO};
use crate::{engine, stderr, weft_output};

#[test]
fn garbage_core_modules_and_broken_components_are_named_as_such() {
    let error = engine().load_flow(b"#!/bin/sh\necho hi\n", "script.wasm").expect_err("refused");
    assert_eq!(
        error.to_string(),
        "`script.wasm` is not a WebAssembly file (it does not start with the `\\0asm` header)"
    );

    // The smallest core module: header and version.
    let error = engine().load_flow(b"\0asm\x01\0\0\0", "core.wasm").expect_err("refused");
    assert!(matches!(error, ComponentError::CoreModule { .. }));
    assert!(error.to_string().contains("build it for the `wasm32-wasip2` target"), "{error}");

    let hello = std::fs::read(EXAMPLE_HELLO).expect("fixture");
    let error = engine().load_flow(&hello[..hello.len() / 2], "cut.wasm").expect_err("refused");
    assert!(matches!(error, ComponentError::Invalid { .. }), "{error:?}");
    assert!(error.to_string().starts_with("`cut.wasm` is not a valid component: "), "{error}");
}

#[test]
fn a_component_of_another_world_is_not_a_flow() {
    let bytes = std::fs::read(COMMAND).expect("fixture");
    let error = engine().load_flow(&bytes, "command.wasm").expect_err("refused");
    let text = error.to_string();
    assert!(
        text.starts_with("`command.wasm` is not a weft flow: it does not export `weft:flow/flow-entry@0.1.0`"),
        "{text}"
    );
    assert!(text.contains("wasi:cli/run"), "says what it exports: {text}");
    assert!(text.contains("#[weft::flow]"), "says how to fix it: {text}");
}

#[test]
fn the_cli_exits_2_on_a_file_that_is_not_a_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let output = weft_output(&["run", core.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is a core WebAssembly module, not a component"), "{}", stderr(&output));

    let output = weft_output(&["run", COMMAND]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is not a weft flow"), "{}", stderr(&output));

    let output = weft_output(&["run", "does-not-exist.wasm"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read flow component `does-not-exist.wasm`"), "{}", stderr(&output));
}

#[tokio::test]
async fn compiled_code_is_cached_on_local_disk_and_a_bad_entry_is_recompiled() {
    use weft::model::{Digest, FlowRunOutcome};

    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(EXAMPLE_HELLO).expect("fixture");
    let digest = Digest::of(&bytes);
    let entry = || {
        let folders: Vec<_> = std::fs::read_dir(dir.path()).expect("cache dir").map_while(Result::ok).collect();
        assert_eq!(folders.len(), 1, "one folder per engine compatibility hash");
        folders[0].path().join(format!("{}.cwasm", digest.hex()))
    };
    let run = |flow: weft::engine::FlowComponent| async move {
        let request = weft::runner::FlowRunRequest::new(&flow, serde_json::json!({})).expect("params");
        weft::runner::run_flow(engine(), &flow, request, std::sync::Arc::new(weft::model::DiscardLogs)).await.outcome
    };
    let hello = FlowRunOutcome::Completed { result: serde_json::json!("Hello, Marvin!") };

    let first = engine().load_flow_cached(&bytes, &digest, "hello.wasm", dir.path()).expect("compiles");
    assert!(entry().is_file(), "compiled code was cached");
    assert_eq!(run(first).await, hello);
    let cached = engine().load_flow_cached(&bytes, &digest, "hello.wasm", dir.path()).expect("from the cache");
    assert_eq!(cached.name(), "hello");
    assert_eq!(run(cached).await, hello);

    std::fs::write(entry(), b"not compiled code").expect("corrupt the entry");
    let recompiled = engine().load_flow_cached(&bytes, &digest, "hello.wasm", dir.path()).expect("recompiles");
    assert_eq!(run(recompiled).await, hello);
    assert!(std::fs::metadata(entry()).expect("entry").len() > 1000, "the bad entry was replaced");
}
