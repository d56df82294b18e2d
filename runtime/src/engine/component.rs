//! Reading a component before compiling it: is it a component at all, and
//! what do its weft custom sections say.

use serde_json::Value;
use wasmparser::{Parser, Payload};

/// The custom section holding the parameters' JSON Schema.
pub const SCHEMA_SECTION: &str = "weft:parameters-schema";
/// The custom section holding the flow's name.
pub const NAME_SECTION: &str = "weft:flow-name";

/// The entry points' names, in the current `weft:flow` version; components
/// built against an older served version export them under its number.
const FLOW_EXPORT: &str = "weft:flow/flow-entry@0.2.0";
const TASK_EXPORT: &str = "weft:flow/task-entry@0.2.0";

/// Whether `export` is the interface `wanted` (a current name such as
/// [`FLOW_EXPORT`]) in any `weft:flow` version weft serves.
fn is_entry(export: &str, wanted: &str) -> bool {
    let (Some((name, _)), Some((wanted, _))) = (export.split_once('@'), wanted.split_once('@')) else {
        return false;
    };
    name == wanted && crate::host::WIT_VERSIONS.iter().any(|v| export.ends_with(&format!("@{v}")))
}

/// Why a component cannot be run as a flow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComponentError {
    /// The bytes are not WebAssembly.
    #[error("`{component}` is not a WebAssembly file (it does not start with the `\\0asm` header)")]
    NotWasm {
        /// The component's path or URL.
        component: String,
    },
    /// A core module, not a component.
    #[error(
        "`{component}` is a core WebAssembly module, not a component: build it for the `wasm32-wasip2` target \
         (`cargo build --target wasm32-wasip2`), which emits a component"
    )]
    CoreModule {
        /// The component's path or URL.
        component: String,
    },
    /// Malformed or unsupported.
    #[error("`{component}` is not a valid component: {reason}")]
    Invalid {
        /// The component's path or URL.
        component: String,
        /// What the validator said.
        reason: String,
    },
    /// It needs imports that weft does not provide.
    #[error(
        "`{component}` imports something weft does not provide to flows (weft provides WASI 0.2 and `weft:flow` 0.2.0 and 0.1.0): {reason}"
    )]
    Imports {
        /// The component's path or URL.
        component: String,
        /// What the linker said.
        reason: String,
    },
    /// It does not export the world it is used as (a flow, a task).
    #[error("`{component}` is not a weft {wanted}: {reason}")]
    WrongWorld {
        /// The component's path or URL.
        component: String,
        /// What it was to be: `flow` or `task component`.
        wanted: &'static str,
        /// What it exports instead, and what to do.
        reason: String,
    },
    /// A weft custom section is malformed.
    #[error("`{component}`: its `{section}` custom section is unusable: {reason}")]
    BadSection {
        /// The component's path or URL.
        component: String,
        /// The section's name.
        section: &'static str,
        /// Why.
        reason: String,
    },
}

/// What a component says about itself in its weft custom sections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentInfo {
    /// The parameters' JSON Schema.
    pub parameters_schema: Option<Value>,
    /// The flow's name.
    pub flow_name: Option<String>,
    /// What the component exports, by name (`weft:flow/flow-entry@0.2.0`).
    pub exports: Vec<String>,
}

impl ComponentInfo {
    /// Whether it exports the `flow` world's entry point.
    pub fn is_flow(&self) -> bool {
        self.exports.iter().any(|e| is_entry(e, FLOW_EXPORT))
    }

    /// Whether it exports the `task` world's entry point.
    pub fn is_task(&self) -> bool {
        self.exports.iter().any(|e| is_entry(e, TASK_EXPORT))
    }
}

/// Like [`inspect`], and checks that the component is a task component
/// (world `task`) without compiling it.
pub fn inspect_task(bytes: &[u8], source: &str) -> Result<ComponentInfo, ComponentError> {
    let info = inspect(bytes, source)?;
    if info.is_task() {
        return Ok(info);
    }
    let reason = if info.is_flow() {
        "it is a flow (it exports `weft:flow/flow-entry`), not a task component: build the task with \
         `#[weft::task_component]` (or the `task` world of `weft:flow@0.2.0`)"
            .to_owned()
    } else {
        not_exported(TASK_EXPORT, &info.exports, "`#[weft::task_component]`", "task")
    };
    Err(ComponentError::WrongWorld { component: source.to_owned(), wanted: "task component", reason })
}

/// Like [`inspect`], and checks that the component is a flow (world
/// `flow`) without compiling it.
pub fn inspect_flow(bytes: &[u8], source: &str) -> Result<ComponentInfo, ComponentError> {
    let info = inspect(bytes, source)?;
    if info.is_flow() {
        return Ok(info);
    }
    Err(ComponentError::WrongWorld { component: source.to_owned(), wanted: "flow", reason: not_a_flow(&info.exports) })
}

/// Why a component exporting `exports` is not a flow, and the fix.
fn not_a_flow(exports: &[String]) -> String {
    if exports.iter().any(|e| is_entry(e, TASK_EXPORT)) {
        "it is a task component (it exports `weft:flow/task-entry`); run a flow that calls it instead".to_owned()
    } else if let Some(run) = exports.iter().find(|e| e.starts_with("wasi:cli/run")) {
        format!(
            "it is a command (it exports `{run}`: a program with a `main`), not a flow: mark the flow function \
             with `#[weft::flow]` (or implement the `flow` world of the `weft:flow@0.2.0` WIT package)"
        )
    } else {
        not_exported(FLOW_EXPORT, exports, "`#[weft::flow]`", "flow")
    }
}

fn not_exported(wanted: &str, exports: &[String], attribute: &str, world: &str) -> String {
    let unserved = wanted.split_once('@').and_then(|(name, _)| {
        exports.iter().find_map(|e| e.strip_prefix(name)?.strip_prefix('@').filter(|_| !is_entry(e, wanted)))
    });
    if let Some(version) = unserved {
        return format!(
            "it is built against `weft:flow@{version}`, which this weft does not serve (it serves {}): run it \
             with a weft release that serves that version, or rebuild it with this release's SDK",
            crate::host::WIT_VERSIONS.join(" and ")
        );
    }
    let listed = if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") };
    format!(
        "it does not export `{wanted}` (it exports: {listed}). Mark the entry function with {attribute}, or \
         implement the `{world}` world of the `weft:flow@0.2.0` WIT package"
    )
}

/// Checks that `bytes` are a component and reads its weft custom sections,
/// wherever they are nested (language toolchains put them in the core module
/// inside the component).
pub fn inspect(bytes: &[u8], source: &str) -> Result<ComponentInfo, ComponentError> {
    if Parser::is_core_wasm(bytes) {
        return Err(ComponentError::CoreModule { component: source.to_owned() });
    }
    if !Parser::is_component(bytes) {
        return Err(ComponentError::NotWasm { component: source.to_owned() });
    }
    let mut info = ComponentInfo::default();
    let invalid = |e: wasmparser::BinaryReaderError| ComponentError::Invalid {
        component: source.to_owned(),
        reason: e.to_string(),
    };
    // How deep in nested modules and components the parser is: exports at
    // depth 0 are the component's own.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        let section = match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => {
                depth += 1;
                continue;
            }
            Payload::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    info.exports.push(export.map_err(invalid)?.name.name.to_owned());
                }
                continue;
            }
            Payload::CustomSection(section) => section,
            _ => continue,
        };
        let bad = |reason: String| ComponentError::BadSection {
            component: source.to_owned(),
            section: if section.name() == SCHEMA_SECTION { SCHEMA_SECTION } else { NAME_SECTION },
            reason,
        };
        match section.name() {
            SCHEMA_SECTION => {
                let schema: Value =
                    serde_json::from_slice(section.data()).map_err(|e| bad(format!("not JSON: {e}")))?;
                info.parameters_schema = Some(schema);
            }
            NAME_SECTION => {
                let name = std::str::from_utf8(section.data()).map_err(|e| bad(format!("not UTF-8: {e}")))?;
                info.flow_name = Some(name.to_owned());
            }
            _ => {}
        }
    }
    Ok(info)
}

/// What [`annotate`] writes into a component.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    /// The flow's name (`weft:flow-name`).
    pub flow_name: Option<String>,
    /// The parameters' JSON Schema (`weft:parameters-schema`).
    pub parameters_schema: Option<Value>,
}

/// Why a component could not be annotated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnnotateError {
    /// The bytes are not a usable component.
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// Nothing to write.
    #[error("nothing to embed: give `--flow-name NAME`, `--parameters-schema FILE`, or both")]
    Nothing,
    /// The component has the section already.
    #[error(
        "`{component}` already has a `{section}` custom section; annotate the component the build made, not one \
         annotated before (a second section would leave it unclear which one holds)"
    )]
    Duplicate {
        /// The component's path.
        component: String,
        /// The section.
        section: &'static str,
    },
    /// The name is not usable.
    #[error("flow name {name:?} {reason}")]
    Name {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The schema is not a JSON Schema.
    #[error("the parameters schema is not a valid JSON Schema: {0}")]
    Schema(String),
}

/// The longest flow name weft accepts.
pub const MAX_FLOW_NAME: usize = 128;

/// Checks a flow name: 1 to 128 characters, none of them control
/// characters (a name is printed in logs, tables and Kubernetes labels).
pub fn check_flow_name(name: &str) -> Result<(), AnnotateError> {
    let reason = if name.trim().is_empty() {
        "is empty"
    } else if name.chars().count() > MAX_FLOW_NAME {
        "is longer than 128 characters"
    } else if name.chars().any(char::is_control) {
        "holds control characters (a newline, a tab, an escape)"
    } else if name.trim() != name {
        "starts or ends with white space"
    } else {
        return Ok(());
    };
    Err(AnnotateError::Name { name: name.to_owned(), reason })
}

/// Embeds weft's custom sections in a component, for toolchains that cannot
/// write them (componentize-py, componentize-js): what they embed is checked
/// as the host will read it, and a component that has a section already is
/// refused.
pub fn annotate(bytes: &[u8], source: &str, annotations: &Annotations) -> Result<Vec<u8>, AnnotateError> {
    use wasm_encoder::ComponentSection as _;

    if annotations.flow_name.is_none() && annotations.parameters_schema.is_none() {
        return Err(AnnotateError::Nothing);
    }
    let info = inspect(bytes, source)?;
    let mut out = bytes.to_vec();
    if let Some(name) = &annotations.flow_name {
        check_flow_name(name)?;
        if info.flow_name.is_some() {
            return Err(AnnotateError::Duplicate { component: source.to_owned(), section: NAME_SECTION });
        }
        let section = wasm_encoder::CustomSection { name: NAME_SECTION.into(), data: name.as_bytes().into() };
        section.append_to_component(&mut out);
    }
    if let Some(schema) = &annotations.parameters_schema {
        crate::model::ParameterSchema::new(schema.clone()).map_err(AnnotateError::Schema)?;
        if info.parameters_schema.is_some() {
            return Err(AnnotateError::Duplicate { component: source.to_owned(), section: SCHEMA_SECTION });
        }
        let data = serde_json::to_vec(schema).map_err(|e| AnnotateError::Schema(e.to_string()))?;
        let section = wasm_encoder::CustomSection { name: SCHEMA_SECTION.into(), data: data.into() };
        section.append_to_component(&mut out);
    }
    // Read back as the host will read it.
    inspect(&out, source)?;
    Ok(out)
}

/// The error for a component that links but does not export the flow world.
pub(super) fn wrong_world(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    source: &str,
) -> ComponentError {
    let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_owned()).collect();
    ComponentError::WrongWorld { component: source.to_owned(), wanted: "flow", reason: not_a_flow(&exports) }
}

/// A flow name from a path or URL: the file name without `.wasm`.
pub(super) fn name_from_source(source: &str) -> String {
    let file = source.rsplit(['/', '\\']).next().unwrap_or(source);
    file.strip_suffix(".wasm").unwrap_or(file).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_core_modules_and_garbage_apart() {
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(inspect(core, "m.wasm"), Err(ComponentError::CoreModule { .. })));
        assert!(matches!(inspect(b"hello", "x.wasm"), Err(ComponentError::NotWasm { .. })));
        assert_eq!(name_from_source("/tmp/flows/etl.wasm"), "etl");
    }

    #[test]
    fn entry_points_of_every_served_version_count_and_others_are_named() {
        let info = |export: &str| ComponentInfo { exports: vec![export.to_owned()], ..ComponentInfo::default() };
        assert!(info("weft:flow/flow-entry@0.2.0").is_flow());
        assert!(info("weft:flow/flow-entry@0.1.0").is_flow());
        assert!(info("weft:flow/task-entry@0.1.0").is_task());
        assert!(!info("weft:flow/flow-entry@0.1.0").is_task());
        let future = info("weft:flow/flow-entry@0.9.0");
        assert!(!future.is_flow());
        let reason = not_a_flow(&future.exports);
        assert!(reason.contains("built against `weft:flow@0.9.0`") && reason.contains("0.2.0 and 0.1.0"), "{reason}");
    }
}
