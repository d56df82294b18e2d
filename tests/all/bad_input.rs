//! Bad input of every kind, given to the `weft` command: each is refused
//! with exit status 2 and a message that names the thing and the fix.

use crate::fixtures::{EXAMPLE_HELLO, PARAMS};
use crate::store::Backend;
use crate::{stderr, weft};

/// Runs `weft` with `args` and the backend's store, and checks it exits 2
/// saying each of `expected`.
fn refused(backend: &Backend, args: &[&str], expected: &[&str]) {
    let output = weft().args(args).args(backend.args()).output().expect("weft");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
    for needle in expected {
        assert!(text.contains(needle), "{args:?} should say {needle:?}: {text}");
    }
}

#[test]
fn impossible_limits_are_refused_with_the_valid_range() {
    let backend = Backend::file();
    let range = "from 64KiB (one WebAssembly page) to 4GiB";
    refused(&backend, &["run", EXAMPLE_HELLO, "--memory", "0"], &["a memory limit of 0 B is impossible", range]);
    refused(&backend, &["run", EXAMPLE_HELLO, "--memory", "1TiB"], &["1.0 TiB is impossible", range]);
    refused(&backend, &["run", EXAMPLE_HELLO, "--timeout", "5"], &["`5` has no unit: write 5s, 5m or 5h"]);
}

#[test]
fn store_urls_without_a_bucket_and_unreachable_stores_name_the_fix() {
    for (url, missing) in [("s3://", "bucket"), ("gs://", "bucket"), ("az://", "container")] {
        let output = weft().args(["runs", "ls", "--store", url]).output().expect("weft");
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains(&format!("it names no {missing}")), "{url}: {}", stderr(&output));
    }
    // Nothing listens on port 1.
    let output = weft()
        .args(["runs", "ls", "--store", "s3://weft-test"])
        .args(["--store-option", "endpoint=http://127.0.0.1:1", "--store-option", "allow_http=true"])
        .args(["--store-option", "access_key_id=a", "--store-option", "secret_access_key=b"])
        .args(["--store-option", "retry_timeout=1s"])
        .output()
        .expect("weft");
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    for needle in
        ["store `s3://weft-test` is unreachable", "could not connect to http://127.0.0.1:1", "store option `endpoint`"]
    {
        assert!(text.contains(needle), "should say {needle:?}: {text}");
    }
}

#[test]
fn deployment_files_name_the_field_the_type_and_the_fix() {
    let backend = Backend::file();
    let dir = tempfile::tempdir().expect("tempdir");
    let deploy = |name: &str, yaml: &str, expected: &[&str]| {
        let file = dir.path().join(name);
        std::fs::write(&file, yaml).expect("write");
        refused(&backend, &["deploy", "-f", file.to_str().expect("utf-8")], expected);
    };
    let hello = |extra: &str| format!("deployments:\n  - name: a\n    flow: {EXAMPLE_HELLO}\n{extra}");
    deploy("three.yaml", &hello("    retries: three\n"), &["line 4", "`retries` must be a whole number, 0 or more"]);
    deploy("minus.yaml", &hello("    retries: -1\n"), &["line 4", "`retries` must be a whole number, 0 or more"]);
    deploy("empty.yaml", "", &["the file is empty; a deployment file looks like this:", "deployments:\n  - name:"]);
    deploy("list.yaml", "- name: a\n  flow: a.wasm\n", &["the top level is a list, not a mapping"]);
    deploy("bare.yaml", &hello("    sandbox: {timeout: 5}\n"), &["`5` has no unit: write 5s, 5m or 5h"]);
    deploy("env.yaml", &hello("    sandbox: {env: [\"A=B\"]}\n"), &["`A=B` is not an environment variable name"]);
    deploy("memory.yaml", &hello("    sandbox: {memory: 1TiB}\n"), &["from 64KiB (one WebAssembly page) to 4GiB"]);

    // Parameters: the flow is named as the flow, the fix is the file's.
    let params = |extra: &str| format!("deployments:\n  - name: y-bad\n    flow: {PARAMS}\n{extra}");
    deploy(
        "typo.yaml",
        &params("    parameters: {nmae: Marvin}\n"),
        &[
            "deployment `y-bad`",
            "flow `params`: parameter `nmae` is not a parameter of this flow: did you mean `name`?",
        ],
    );
    deploy(
        "scheduled.yaml",
        &params("    parameters: {n: 2}\n    schedule: {interval: 1h}\n"),
        &["flow `params`: parameter `name` is required but missing: add it under the deployment's `parameters:`"],
    );
    let output = weft().args(["deploy", "-f"]).arg(dir.path().join("scheduled.yaml")).args(backend.args()).output();
    assert!(!stderr(&output.expect("weft")).contains("-p "), "a deployment file's fix is not a command-line flag");
}
