//! The wasmtime side of weft: one [`Engine`] per process (compiler settings,
//! epoch ticker, the [`Linker`] with WASI and the weft interfaces), and one
//! [`FlowComponent`] per component (compiled code and its `InstancePre`),
//! both built once and reused; each run gets only a fresh `Store`.
//!
//! May call `host` (to fill the linker, and for the types a compiled
//! component is prepared as), `model` and `sandbox`; does no storage I/O.
//! Nothing below calls it.

mod cache;
mod component;
mod tasks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};

pub use crate::sandbox::{Grants, LimitExceeded, Limits, format_bytes};
pub use component::{
    AnnotateError, Annotations, ComponentError, ComponentInfo, MAX_FLOW_NAME, annotate, check_flow_name, inspect,
    inspect_flow, inspect_task,
};
pub use tasks::{TaskBytes, compile_later, compile_task};

pub use crate::host::{TaskComponent, TaskComponents, TaskLoader};

use crate::host::{FlowPre, RunState, TaskPre};
use crate::model::ParameterSchema;

/// How often the epoch advances. Deadlines and cancellation are noticed
/// within one tick, and a guest in a tight loop yields to other runs once per
/// tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Settings of the process-wide engine.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Count fuel (executed instructions) so that runs can be given a fuel
    /// limit. Costs some speed on every run, so it is off unless asked for.
    pub fuel: bool,
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the WebAssembly engine: {0}")]
pub struct EngineError(String);

/// The compiler, the linker and the epoch ticker, shared by every run in the
/// process. Cloning it is cheap and shares all of them.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<RunState>,
    fuel: bool,
    ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("fuel", &self.inner.fuel).finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine and its linker and starts the epoch ticker.
    pub fn new(config: &EngineConfig) -> Result<Self, EngineError> {
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel)
            // Guests get a fixed stack; deep recursion traps as a stack
            // overflow instead of growing without bound.
            .max_wasm_stack(1 << 20)
            .async_stack_size(4 << 20);
        let wasmtime = wasmtime::Engine::new(&wasm).map_err(|e| EngineError(e.to_string()))?;

        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| EngineError(e.to_string()))?;
        crate::host::add_to_linker(&mut linker).map_err(|e| EngineError(e.to_string()))?;

        let ticker = Arc::new(AtomicBool::new(true));
        let weak = wasmtime.weak();
        let running = ticker.clone();
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| EngineError(format!("cannot start the epoch thread: {e}")))?;

        Ok(Engine { inner: Arc::new(Inner { wasmtime, linker, fuel: config.fuel, ticker }) })
    }

    /// Compiles a flow component and prepares its instantiation.
    ///
    /// `source` names the component in errors (a path or a URL). Fails with
    /// a clear reason on bytes that are not a component, a component that
    /// does not export the `flow` world, or one that needs imports weft does
    /// not provide.
    pub fn load_flow(&self, bytes: &[u8], source: &str) -> Result<FlowComponent, ComponentError> {
        let info = inspect(bytes, source)?;
        let component = self.compile(bytes, source)?;
        self.prepare(&component, info, source)
    }

    /// Like [`Engine::load_flow`], with compiled code cached in `cache_dir`
    /// on local disk, keyed by the component's digest and this engine's
    /// compatibility hash. `digest` must be the digest of `bytes`, already
    /// verified: the cache trusts it.
    pub fn load_flow_cached(
        &self,
        bytes: &[u8],
        digest: &crate::model::Digest,
        source: &str,
        cache_dir: &std::path::Path,
    ) -> Result<FlowComponent, ComponentError> {
        let info = inspect(bytes, source)?;
        let component = self.compile_cached(bytes, digest, source, cache_dir)?;
        self.prepare(&component, info, source)
    }

    /// Compiles a task component (world `task`) and prepares its
    /// instantiation; with `cache_dir`, compiled code is cached there as for
    /// [`Engine::load_flow_cached`] (`digest` must be that of `bytes`).
    pub fn load_task(
        &self,
        bytes: &[u8],
        digest: &crate::model::Digest,
        source: &str,
        cache_dir: Option<&std::path::Path>,
    ) -> Result<TaskComponent, ComponentError> {
        inspect_task(bytes, source)?;
        let component = match cache_dir {
            Some(dir) => self.compile_cached(bytes, digest, source, dir)?,
            None => self.compile(bytes, source)?,
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| ComponentError::Imports { component: source.to_owned(), reason: format!("{e:#}") })?;
        let pre = TaskPre::new(pre).map_err(|e| ComponentError::WrongWorld {
            component: source.to_owned(),
            wanted: "task component",
            reason: format!("it does not export the `task` world's entry point as weft expects: {e:#}"),
        })?;
        Ok(TaskComponent::new(pre, digest.clone(), source.to_owned()))
    }

    /// Where the compiled code of `digest` is cached under `cache_dir`,
    /// and the name of its folder (the engine's compatibility hash), which
    /// also names it in the store.
    pub fn compiled_cache_entry(
        &self,
        cache_dir: &std::path::Path,
        digest: &crate::model::Digest,
    ) -> (String, std::path::PathBuf) {
        let folder = cache::compatibility(&self.inner.wasmtime);
        (folder, cache::CompiledCache::new(&self.inner.wasmtime, cache_dir).path(digest))
    }

    fn compile_cached(
        &self,
        bytes: &[u8],
        digest: &crate::model::Digest,
        source: &str,
        cache_dir: &std::path::Path,
    ) -> Result<Component, ComponentError> {
        let cache = cache::CompiledCache::new(&self.inner.wasmtime, cache_dir);
        if let Some(component) = cache.load(&self.inner.wasmtime, digest) {
            return Ok(component);
        }
        // Whoever held the lock before us may have compiled it meanwhile.
        let _lock = cache.lock(digest);
        if let Some(component) = cache.load(&self.inner.wasmtime, digest) {
            return Ok(component);
        }
        let component = self.compile(bytes, source)?;
        cache.store(&component, digest);
        Ok(component)
    }

    fn compile(&self, bytes: &[u8], source: &str) -> Result<Component, ComponentError> {
        let started = Instant::now();
        let component = Component::new(&self.inner.wasmtime, bytes)
            .map_err(|e| ComponentError::Invalid { component: source.to_owned(), reason: format!("{e:#}") })?;
        tracing::debug!(source, elapsed = ?started.elapsed(), "compiled component");
        Ok(component)
    }

    fn prepare(
        &self,
        component: &Component,
        info: ComponentInfo,
        source: &str,
    ) -> Result<FlowComponent, ComponentError> {
        let pre = self
            .inner
            .linker
            .instantiate_pre(component)
            .map_err(|e| ComponentError::Imports { component: source.to_owned(), reason: format!("{e:#}") })?;
        let pre = FlowPre::new(pre).map_err(|_| component::wrong_world(&self.inner.wasmtime, component, source))?;
        let schema = match info.parameters_schema {
            Some(schema) => Some(ParameterSchema::new(schema).map_err(|reason| ComponentError::BadSection {
                component: source.to_owned(),
                section: component::SCHEMA_SECTION,
                reason,
            })?),
            None => None,
        };
        let name = info.flow_name.unwrap_or_else(|| component::name_from_source(source));
        Ok(FlowComponent { pre, name, schema, source: source.to_owned() })
    }

    /// Whether runs may be given a fuel limit.
    pub fn counts_fuel(&self) -> bool {
        self.inner.fuel
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
    }
}

/// A compiled flow, ready to instantiate any number of times.
pub struct FlowComponent {
    pub(crate) pre: FlowPre,
    name: String,
    schema: Option<ParameterSchema>,
    source: String,
}

impl std::fmt::Debug for FlowComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowComponent").field("name", &self.name).field("source", &self.source).finish_non_exhaustive()
    }
}

impl FlowComponent {
    /// The flow's name: from its `weft:flow-name` section, else the file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parameter schema embedded in the component, if it has one.
    pub fn parameters_schema(&self) -> Option<&ParameterSchema> {
        self.schema.as_ref()
    }

    /// Where the component came from.
    pub fn source(&self) -> &str {
        &self.source
    }
}
