//! Files that are not weft flows are refused with a clear error.

use weft::engine::ComponentError;

use crate::fixtures::{COMMAND, EXAMPLE_HELLO, PARAMS, WORKER_TASK};
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
    assert!(text.starts_with("`command.wasm` is not a weft flow: it is a command (it exports `wasi:cli/run"), "{text}");
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
    assert!(stderr(&output).contains("is not a weft flow: it is a command"), "{}", stderr(&output));

    let output = weft_output(&["run", dir.path().to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is a directory, not a component file"), "{}", stderr(&output));

    let output = weft_output(&["run", "does-not-exist.wasm"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read flow component `does-not-exist.wasm`"), "{}", stderr(&output));
}

/// Nothing that could never run takes space in the store: `weft run` and
/// `weft deploy` check a component's world before they push it.
#[test]
fn a_refused_component_is_not_stored() {
    let backend = crate::store::Backend::file();
    let store_dir = backend.args()[1].trim_start_matches("file://").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let core = core.to_str().expect("utf-8");
    let yaml = dir.path().join("weft.yaml");
    std::fs::write(&yaml, format!("deployments:\n  - name: a\n    flow: {COMMAND}\n")).expect("write");
    let task_yaml = dir.path().join("tasks.yaml");
    std::fs::write(
        &task_yaml,
        format!("deployments:\n  - name: a\n    flow: {EXAMPLE_HELLO}\n    tasks: {{t: {COMMAND}}}\n"),
    )
    .expect("write");
    let yaml = yaml.to_str().expect("utf-8");
    let task_yaml = task_yaml.to_str().expect("utf-8");
    for (args, message) in [
        (vec!["run", core], "is a core WebAssembly module"),
        (vec!["run", COMMAND], "is not a weft flow: it is a command"),
        (vec!["run", EXAMPLE_HELLO, "--task", &format!("t={COMMAND}")], "--task t: "),
        (vec!["deploy", "-f", yaml], "is not a weft flow: it is a command"),
        (vec!["deploy", "-f", task_yaml], "task `t`: "),
    ] {
        let output = crate::weft().args(&args).args(backend.args()).output().expect("weft");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(message), "{args:?}: {}", stderr(&output));
        let artifacts = std::path::Path::new(&store_dir).join("artifacts/sha256");
        let stored: Vec<_> =
            std::fs::read_dir(&artifacts).map(|d| d.map_while(Result::ok).collect()).unwrap_or_default();
        // Only the flow of the `--task` and task deployment cases is stored.
        assert!(stored.len() <= 1, "{args:?} stored {stored:?}");
        if stored.len() == 1 {
            let hello = weft::model::Digest::of(&std::fs::read(EXAMPLE_HELLO).expect("fixture"));
            assert!(stored[0].path().ends_with(format!("{}.wasm", hello.hex())), "{args:?} stored {stored:?}");
        }
    }
}

/// Runners starting the same new component at once on one host (an agent
/// with a fresh cache and many queued runs) compile it once: one takes the
/// cache entry's lock and compiles, the others wait and load its result.
#[test]
fn processes_starting_one_new_component_at_once_compile_it_once() {
    let home = tempfile::tempdir().expect("tempdir");
    let children: Vec<_> = (0..4)
        .map(|_| {
            crate::weft()
                .args(["run", EXAMPLE_HELLO, "--store", "memory://"])
                .env("WEFT_HOME", home.path())
                .env("WEFT_LOG", "weft=debug")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("weft run")
        })
        .collect();
    let mut compiled = 0;
    for child in children {
        let output = child.wait_with_output().expect("weft run exits");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        compiled += stderr(&output).matches("compiled component").count();
    }
    assert_eq!(compiled, 1, "the component was compiled {compiled} times");
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

/// `weft component annotate` on a copy of `fixture`, with extra arguments.
fn annotate(fixture: &str, args: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("component.wasm");
    std::fs::copy(fixture, &copy).expect("copy");
    let mut command = crate::weft();
    command.args(["component", "annotate"]).arg(&copy).args(args).current_dir(dir.path());
    (command.output().expect("weft component annotate"), dir)
}

#[test]
fn annotate_embeds_a_name_and_a_schema_that_the_host_then_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = dir.path().join("schema.json");
    let json = r#"{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}"#;
    std::fs::write(&schema, json).expect("write");
    let schema = schema.display().to_string();
    let (output, dir) = annotate(WORKER_TASK, &["--flow-name", "counted", "--parameters-schema", &schema]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bytes = std::fs::read(dir.path().join("component.wasm")).expect("annotated");
    let info = weft::engine::inspect(&bytes, "component.wasm").expect("still a component");
    assert_eq!(info.flow_name.as_deref(), Some("counted"));
    assert_eq!(info.parameters_schema.as_ref().expect("schema")["required"], serde_json::json!(["n"]));
    assert!(info.is_task(), "annotating changes nothing else");
    assert!(engine().load_task(&bytes, &weft::model::Digest::of(&bytes), "component.wasm", None).is_ok());
}

#[test]
fn annotate_refuses_duplicates_bad_names_and_bad_schemas() {
    let (output, _dir) = annotate(PARAMS, &["--flow-name", "again"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("already has a `weft:flow-name` custom section"), "{}", stderr(&output));

    let (output, _dir) = annotate(WORKER_TASK, &["--flow-name", "two\nlines"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("holds control characters"), "{}", stderr(&output));

    let (output, dir) = annotate(WORKER_TASK, &["--parameters-schema", "schema.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read schema file `schema.json`"), "{}", stderr(&output));
    std::fs::write(dir.path().join("bad.json"), r#"{"type": "integr"}"#).expect("write");
    let copy = dir.path().join("component.wasm");
    let output = crate::weft()
        .args(["component", "annotate"])
        .arg(&copy)
        .args(["--parameters-schema", "bad.json"])
        .current_dir(dir.path())
        .output()
        .expect("weft");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("the parameters schema is not a valid JSON Schema"), "{}", stderr(&output));
    assert_eq!(std::fs::read(&copy).expect("read"), std::fs::read(WORKER_TASK).expect("read"), "nothing written");

    let (output, _dir) = annotate(WORKER_TASK, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("nothing to embed"), "{}", stderr(&output));
}

#[test]
fn compiled_code_is_shared_through_the_store_only_under_the_code_key() {
    let backend = crate::store::Backend::file();
    let store_root = std::path::PathBuf::from(backend.url.trim_start_matches("file://"));
    let key = "a-code-key-of-forty-characters-0123456789";
    // A machine of its own: a fresh home (and so an empty local cache).
    let run = |code_key: Option<&str>| {
        let home = tempfile::tempdir().expect("home");
        let mut command = crate::weft();
        command.env("WEFT_HOME", home.path()).env("WEFT_LOG", "weft=info");
        if let Some(code_key) = code_key {
            command.env("WEFT_CODE_KEY", code_key);
        }
        let output =
            command.args(["run", EXAMPLE_HELLO, "-p", "name=code"]).args(backend.args()).output().expect("weft run");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stderr(&output)
    };
    let compiled = || -> Vec<std::path::PathBuf> {
        let Ok(folders) = std::fs::read_dir(store_root.join("compiled")) else { return Vec::new() };
        folders
            .flat_map(|f| std::fs::read_dir(f.expect("folder").path()).expect("entries"))
            .map(|e| e.expect("entry").path())
            .collect()
    };

    let log = run(None);
    assert!(!log.contains("compiled code"), "without a key nothing is shared: {log}");
    assert!(compiled().is_empty());

    let log = run(Some(key));
    assert!(log.contains("shared compiled code through the store"), "{log}");
    assert_eq!(compiled().len(), 1);
    let log = run(Some(key));
    assert!(log.contains("loaded compiled code from the store"), "a fresh machine reuses it: {log}");

    let log = run(Some("another-key-also-forty-characters-long-00"));
    assert!(log.contains("failed its check"), "code shared under another key is never loaded: {log}");
    assert!(!log.contains("loaded compiled code from the store"), "{log}");

    // Altered in the store: refused, and the run compiles instead.
    let object = &compiled()[0];
    let mut bytes = std::fs::read(object).expect("object");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(object, bytes).expect("write");
    let log = run(Some(key));
    assert!(log.contains("failed its check"), "{log}");

    let output = crate::weft()
        .env("WEFT_CODE_KEY", "short")
        .args(["run", EXAMPLE_HELLO])
        .args(backend.args())
        .output()
        .expect("weft run");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("must be at least 32"), "{}", stderr(&output));
}
