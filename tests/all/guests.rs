//! Python and JavaScript components for the tests, built with the SDKs'
//! build helpers (componentize-py or componentize-js, then `weft component
//! annotate`) once per content: each is kept under target/guests/<language>/
//! by a hash of its source, its SDK and the WIT files, so only a change
//! rebuilds it. A missing toolchain fails the test that needs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use weft::model::Digest;

use crate::{stderr, weft_path};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Language {
    Python,
    JavaScript,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("SDK and WIT folders")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The component built from `source` (relative to the workspace).
pub(crate) fn guest_component(language: Language, source: &str) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = root();
    let (sdk, tool, folder) = match language {
        Language::Python => ("guest-sdk/python/weft", "target/toolchains/venv/bin/componentize-py", "python"),
        Language::JavaScript => {
            ("guest-sdk/js", "target/toolchains/node/node_modules/@bytecodealliance/componentize-js", "js")
        }
    };
    let tool = root.join(tool);
    assert!(tool.exists(), "{} is missing: run tests/toolchains/install.sh (`make test` does)", tool.display());
    let source = root.join(source);
    let mut inputs = vec![source.clone()];
    inputs.extend(files(&root.join(sdk)));
    inputs.extend(files(&root.join("wit/weft-flow@0.2.0")));
    let mut content = Vec::new();
    for input in &inputs {
        content.extend(input.display().to_string().into_bytes());
        content.extend(std::fs::read(input).expect("readable input"));
    }
    let stem = source.file_stem().expect("a file").to_string_lossy().into_owned();
    let output = root.join(format!("target/guests/{folder}/{stem}-{}.wasm", &Digest::of(&content).hex()[..16]));
    if output.exists() {
        return output;
    }
    std::fs::create_dir_all(output.parent().expect("a folder")).expect("target/guests");
    let building = output.with_extension("building.wasm");
    let mut command = match language {
        Language::Python => {
            let mut command = Command::new("python3");
            command
                .args(["-m", "weft", "build"])
                .env("PYTHONPATH", root.join("guest-sdk/python"))
                .env("COMPONENTIZE_PY", &tool);
            command
        }
        Language::JavaScript => {
            let mut command = Command::new("node");
            command
                .arg(root.join("guest-sdk/js/build.mjs"))
                .env("NODE_PATH", root.join("target/toolchains/node/node_modules"));
            command
        }
    };
    let result =
        command.arg(&source).arg("-o").arg(&building).env("WEFT", weft_path()).output().expect("the build runs");
    assert!(result.status.success(), "building {}: {}", source.display(), stderr(&result));
    std::fs::rename(&building, &output).expect("rename");
    output
}
