//! The host side of the `weft:flow` WIT interfaces, one file each (`log`,
//! `context`, `tasks`, the guest's WASI context in `wasi`), and
//! [`RunState`], the data of one flow's or task's `Store`.
//!
//! May call `model` and `sandbox`, never `engine`, which sits above it and
//! prepares components against the linker and types defined here; does no
//! storage I/O (log lines and task runs leave through the run's
//! [`RunSink`](crate::model::RunSink) and its report).

mod context;
mod http;
mod limits;
mod log;
mod name_lookup;
mod task_components;
mod task_registry;
mod tasks;
mod v0_1;
mod wasi;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub(crate) use self::limits::MemoryLimiter;
pub(crate) use self::log::{CUT_MARK, LogCap, RunLog, cut};
pub(crate) use self::task_components::{Inherited, TaskEnv};
pub use self::task_registry::{TaskComponent, TaskComponents, TaskLoader};
pub use self::tasks::REPORTED_TASK_RUNS;
pub(crate) use self::tasks::TaskRuns;
use crate::sandbox::{Grants, LimitExceeded, Limits, StopSignal, Stopped};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/weft-flow@0.2.0",
        world: "flow",
        imports: {
            "weft:flow/tasks": async | trappable,
        },
        exports: { default: async },
        with: {
            "weft:flow/tasks.submitted-task": super::task_components::Submitted,
        },
    });
}

/// The `task` world: its export; its imports are the flow world's.
mod task_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/weft-flow@0.2.0",
        world: "task",
        exports: { default: async },
        with: {
            "weft:flow/types": super::bindings::weft::flow::types,
            "weft:flow/log": super::bindings::weft::flow::log,
            "weft:flow/context": super::bindings::weft::flow::context,
            "weft:flow/tasks": super::bindings::weft::flow::tasks,
        },
    });
}

pub(crate) use bindings::weft::flow::types::Error as WitError;

/// The `weft:flow` versions served, newest first: a component may be built
/// against any of them.
pub const WIT_VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];

/// A flow ready to instantiate, by the `weft:flow` version it was built
/// against.
pub(crate) enum FlowPre {
    Current(bindings::FlowPre<RunState>),
    V0_1(v0_1::FlowPre<RunState>),
}

impl FlowPre {
    /// Checks that `pre` exports a flow entry of a served version.
    pub(crate) fn new(pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        match bindings::FlowPre::new(pre.clone()) {
            Ok(current) => Ok(FlowPre::Current(current)),
            Err(error) => v0_1::FlowPre::new(pre).map(FlowPre::V0_1).map_err(|_| error),
        }
    }
}

/// A task component ready to instantiate, by the `weft:flow` version it was
/// built against.
pub(crate) enum TaskPre {
    Current(task_bindings::TaskPre<RunState>),
    V0_1(v0_1::TaskPre<RunState>),
}

impl TaskPre {
    /// Checks that `pre` exports a task entry of a served version.
    pub(crate) fn new(pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        match task_bindings::TaskPre::new(pre.clone()) {
            Ok(current) => Ok(TaskPre::Current(current)),
            Err(error) => v0_1::TaskPre::new(pre).map(TaskPre::V0_1).map_err(|_| error),
        }
    }

    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        match self {
            TaskPre::Current(pre) => pre.engine(),
            TaskPre::V0_1(pre) => pre.engine(),
        }
    }

    /// Instantiates the task in `store` and runs it with `input` (a
    /// `&String` because the generated `call_run` takes one).
    #[allow(clippy::ptr_arg)]
    pub(crate) async fn run(
        &self,
        store: &mut Store<RunState>,
        input: &String,
    ) -> wasmtime::Result<Result<String, WitError>> {
        match self {
            TaskPre::Current(pre) => {
                let task = pre.instantiate_async(&mut *store).await?;
                task.weft_flow_task_entry().call_run(&mut *store, input).await
            }
            TaskPre::V0_1(pre) => {
                let task = pre.instantiate_async(&mut *store).await?;
                task.weft_flow_task_entry().call_run(&mut *store, input).await
            }
        }
    }
}

/// Who the run is, as the guest's `context.current` reports it.
#[derive(Debug, Clone)]
pub(crate) struct RunIdentity {
    pub flow_run_id: String,
    pub flow_name: String,
    pub deployment_name: Option<String>,
    pub attempt: u32,
}

/// The data of one run's `Store`: its sandbox, limits, log and task runs.
pub struct RunState {
    wasi: WasiCtx,
    http: http::HttpState,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) identity: RunIdentity,
    pub(crate) log: Arc<RunLog>,
    pub(crate) tasks: TaskRuns,
    deadline: Instant,
    timeout: std::time::Duration,
    /// Set when the run is to stop: cancelled, or its runner signalled.
    pub(crate) stop: Option<Arc<StopSignal>>,
    /// The task components the guest may call; none in a task component,
    /// which may not call others.
    pub(crate) components: Option<Arc<TaskEnv>>,
    /// Where task results are cached across runs, if anywhere.
    pub(crate) cache: Option<Arc<dyn crate::model::ResultCache>>,
    /// The names the guest may look up, with their addresses.
    names: std::collections::HashMap<String, Vec<std::net::IpAddr>>,
}

impl RunState {
    pub(crate) fn new(
        identity: RunIdentity,
        log: Arc<RunLog>,
        limits: &Limits,
        grants: &Grants,
        started: Instant,
    ) -> Result<Self, String> {
        Ok(RunState {
            wasi: wasi::sandbox_wasi(&log, grants)?,
            http: http::HttpState::new(grants, log.clone()),
            table: ResourceTable::new(),
            names: grants.names.clone(),
            limiter: MemoryLimiter::new(limits.memory),
            identity,
            log,
            tasks: TaskRuns::default(),
            deadline: started + limits.timeout,
            timeout: limits.timeout,
            stop: None,
            components: None,
            cache: None,
        })
    }

    /// Why the guest must stop now, if it must; called on every epoch tick.
    pub(crate) fn interruption(&self, now: Instant) -> Option<wasmtime::Error> {
        if let Some(reason) = self.stop.as_ref().and_then(|s| s.reason()) {
            return Some(wasmtime::Error::new(Stopped(reason)));
        }
        if now >= self.deadline {
            return Some(wasmtime::Error::new(LimitExceeded::Deadline(self.timeout)));
        }
        self.tasks.timed_out(now).map(wasmtime::Error::new)
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Adds the weft interfaces and `wasi:http` to a linker (the rest of WASI is
/// added by the engine).
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    name_lookup::add_to_linker(linker)?;
    bindings::weft::flow::log::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    bindings::weft::flow::context::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    bindings::weft::flow::tasks::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    v0_1::add_to_linker(linker)
}

impl bindings::weft::flow::types::Host for RunState {}

/// Gives a store its fuel and its epoch deadline: on every tick the
/// deadlines and the stop signal are checked, and the guest yields so that
/// other runs on this thread make progress even when it never calls the host.
pub(crate) fn configure_store(store: &mut Store<RunState>, counts_fuel: bool, fuel: Option<u64>) -> Result<(), String> {
    if let Some(fuel) = fuel {
        if !counts_fuel {
            return Err("a fuel limit was set, but the engine does not count fuel (build it with fuel enabled)".into());
        }
        store.set_fuel(fuel).map_err(|e| format!("cannot set fuel: {e}"))?;
    } else if counts_fuel {
        store.set_fuel(u64::MAX).map_err(|e| format!("cannot set fuel: {e}"))?;
    }
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| match ctx.data().interruption(Instant::now()) {
        Some(error) => Err(error),
        None => Ok(UpdateDeadline::Yield(1)),
    });
    Ok(())
}

/// Why the guest stopped, for a person.
pub(crate) fn trap_reason(error: &wasmtime::Error, log: &RunLog) -> String {
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return limit.to_string();
    }
    if let Some(panic) = log.panic_message() {
        return panic;
    }
    let backtrace = error.downcast_ref::<WasmBacktrace>();
    let place = backtrace
        .and_then(|bt| bt.frames().iter().find_map(|f| f.func_name().map(str::to_owned)))
        .map(|name| format!(" in `{:#}`", rustc_demangle::demangle(&name)))
        .unwrap_or_default();
    let recursion = backtrace.and_then(recursion);
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "ran out of fuel".to_owned(),
        Some(Trap::StackOverflow) => format!("overflowed its stack{place}"),
        // Languages that keep their stack in linear memory (Rust, C) run off
        // its end with an out-of-bounds access, not a stack overflow trap:
        // deep recursion at the trap says which it was.
        Some(Trap::MemoryOutOfBounds) if recursion.is_some() => {
            let (name, depth) = recursion.unwrap_or_default();
            format!(
                "overflowed its stack in `{name}`: an out-of-bounds memory access under {depth} nested calls of \
                 it, which is how a stack in linear memory runs out (recursion too deep, or locals too large)"
            )
        }
        Some(trap) => {
            let trap = trap.to_string();
            format!("trapped{place}: {}", trap.strip_prefix("wasm trap: ").unwrap_or(&trap))
        }
        None => format!("stopped by the host: {}", error.root_cause()),
    }
}

/// Calls of one function nested at least this deep at a trap are taken as
/// recursion.
const RECURSION_DEPTH: usize = 16;

/// The function that recursed at the top of `backtrace`, and how deep: the
/// innermost run of frames of one function, if it is at least
/// [`RECURSION_DEPTH`] long.
fn recursion(backtrace: &WasmBacktrace) -> Option<(String, usize)> {
    let frames = backtrace.frames();
    // Skip the innermost frames of callees (a memcpy) to the recursing function.
    (0..frames.len().min(4)).find_map(|start| {
        let name = frames[start].func_name()?;
        let depth = frames[start..].iter().take_while(|f| f.func_name() == Some(name)).count();
        (depth >= RECURSION_DEPTH).then(|| (format!("{:#}", rustc_demangle::demangle(name)), depth))
    })
}

/// Runs the flow's `run` export.
pub(crate) async fn call_flow(
    pre: &FlowPre,
    store: &mut Store<RunState>,
    parameters: String,
) -> wasmtime::Result<Result<String, WitError>> {
    match pre {
        FlowPre::Current(pre) => {
            let flow = pre.instantiate_async(&mut *store).await?;
            flow.weft_flow_flow_entry().call_run(&mut *store, &parameters).await
        }
        FlowPre::V0_1(pre) => {
            let flow = pre.instantiate_async(&mut *store).await?;
            flow.weft_flow_flow_entry().call_run(&mut *store, &parameters).await
        }
    }
}
