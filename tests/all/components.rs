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
    assert!(text.starts_with("`command.wasm` is not a weft flow: it does not export `weft:flow/flow-entry@0.1.0`"), "{text}");
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
