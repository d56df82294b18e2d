//! The host side of the `weft:flow` WIT interfaces, one file each (`log`,
//! `context`, `tasks`), and [`RunState`], the data of one run's `Store`.
//!
//! May call `model` and `engine`'s limit types; does no storage I/O (log
//! lines and task runs leave through the run's [`RunSink`](crate::model::RunSink)
//! and its report).

mod context;
mod log;
mod tasks;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub(crate) use self::log::RunLog;
pub(crate) use self::tasks::TaskRuns;
use crate::engine::{LimitExceeded, MemoryLimiter};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/weft-flow@0.1.0",
        world: "flow",
        imports: {
            "weft:flow/tasks": async | trappable,
        },
        exports: { default: async },
    });
}

pub(crate) use bindings::FlowPre;
pub(crate) use bindings::weft::flow::types::Error as WitError;

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
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) identity: RunIdentity,
    pub(crate) log: Arc<RunLog>,
    pub(crate) tasks: TaskRuns,
    deadline: Instant,
    timeout: std::time::Duration,
    /// Set when the run is to stop: cancelled, or its runner signalled.
    pub(crate) stop: Option<Arc<crate::runner::StopSignal>>,
}

impl RunState {
    pub(crate) fn new(
        identity: RunIdentity,
        log: Arc<RunLog>,
        limits: &crate::engine::Limits,
        grants: &crate::engine::Grants,
        started: Instant,
    ) -> Result<Self, String> {
        Ok(RunState {
            wasi: crate::engine::sandbox_wasi(&log, grants)?,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory),
            identity,
            log,
            tasks: TaskRuns::default(),
            deadline: started + limits.timeout,
            timeout: limits.timeout,
            stop: None,
        })
    }

    /// Why the guest must stop now, if it must; called on every epoch tick.
    pub(crate) fn interruption(&self, now: Instant) -> Option<wasmtime::Error> {
        if let Some(reason) = self.stop.as_ref().and_then(|s| s.reason()) {
            return Some(wasmtime::Error::new(crate::runner::Stopped(reason)));
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

/// Adds the weft interfaces to a linker (WASI is added by the engine).
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    bindings::weft::flow::log::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    bindings::weft::flow::context::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    bindings::weft::flow::tasks::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    Ok(())
}

impl bindings::weft::flow::types::Host for RunState {}

/// Runs the flow's `run` export.
pub(crate) async fn call_flow(
    pre: &FlowPre<RunState>,
    store: &mut wasmtime::Store<RunState>,
    parameters: String,
) -> wasmtime::Result<Result<String, WitError>> {
    let flow = pre.instantiate_async(&mut *store).await?;
    flow.weft_flow_flow_entry().call_run(&mut *store, &parameters).await
}
