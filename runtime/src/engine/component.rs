//! Reading a component before compiling it: is it a component at all, and
//! what do its weft custom sections say.

use serde_json::Value;
use wasmparser::{Parser, Payload};

/// The custom section holding the parameters' JSON Schema.
pub const SCHEMA_SECTION: &str = "weft:parameters-schema";
/// The custom section holding the flow's name.
pub const NAME_SECTION: &str = "weft:flow-name";

const FLOW_EXPORT: &str = "weft:flow/flow-entry@0.1.0";
const TASK_EXPORT: &str = "weft:flow/task-entry@0.1.0";

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
        "`{component}` imports something weft does not provide to flows (weft provides WASI 0.2 and `weft:flow@0.1.0`): {reason}"
    )]
    Imports {
        /// The component's path or URL.
        component: String,
        /// What the linker said.
        reason: String,
    },
    /// It does not export the flow world.
    #[error("`{component}` is not a weft flow: {reason}")]
    WrongWorld {
        /// The component's path or URL.
        component: String,
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
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| ComponentError::Invalid { component: source.to_owned(), reason: e.to_string() })?;
        let Payload::CustomSection(section) = payload else { continue };
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

/// The error for a component that links but does not export the flow world.
pub(super) fn wrong_world(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    source: &str,
) -> ComponentError {
    let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_owned()).collect();
    let reason = if exports.iter().any(|e| e == TASK_EXPORT) {
        format!("it is a task component (it exports `{TASK_EXPORT}`); run a flow that calls it instead")
    } else {
        let listed = if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") };
        format!(
            "it does not export `{FLOW_EXPORT}` (it exports: {listed}). Mark the flow function with \
             `#[weft::flow]`, or implement the `flow` world of the `weft:flow@0.1.0` WIT package"
        )
    };
    ComponentError::WrongWorld { component: source.to_owned(), reason }
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
}
