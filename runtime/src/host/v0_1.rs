//! `weft:flow@0.1.0`, served beside the current version for components built
//! against it. Every function delegates to the current version's; the only
//! difference is what 0.1.0's `task-options` lacks (a cache expiration),
//! which is taken as "none".

use wasmtime::component::{HasSelf, Linker, Resource};

use super::RunState;
use super::bindings::weft::flow as current;
use super::task_components::Submitted;

mod flow_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/weft-flow@0.1.0",
        world: "flow",
        imports: {
            "weft:flow/tasks": async | trappable,
        },
        exports: { default: async },
        with: {
            // 0.1.0's types are 0.2.0's: one error type on both sides.
            "weft:flow/types": super::super::bindings::weft::flow::types,
            "weft:flow/tasks.submitted-task": super::super::task_components::Submitted,
        },
    });
}

mod task_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/weft-flow@0.1.0",
        world: "task",
        exports: { default: async },
        with: {
            "weft:flow/types": super::super::bindings::weft::flow::types,
            "weft:flow/log": super::flow_bindings::weft::flow::log,
            "weft:flow/context": super::flow_bindings::weft::flow::context,
            "weft:flow/tasks": super::flow_bindings::weft::flow::tasks,
        },
    });
}

pub(super) use flow_bindings::FlowPre;
pub(super) use task_bindings::TaskPre;

use flow_bindings::weft::flow::{context, log, tasks};

type WitError = current::types::Error;

/// Adds the 0.1.0 interfaces to a linker already holding the current ones.
pub(super) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    log::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    context::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    tasks::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    Ok(())
}

impl log::Host for RunState {
    fn emit(&mut self, level: log::Level, message: String, fields: Vec<log::Field>) {
        use current::log::Level as L;
        let level = match level {
            log::Level::Trace => L::Trace,
            log::Level::Debug => L::Debug,
            log::Level::Info => L::Info,
            log::Level::Warn => L::Warn,
            log::Level::Error => L::Error,
        };
        let fields = fields.into_iter().map(|f| current::log::Field { key: f.key, value: f.value }).collect();
        current::log::Host::emit(self, level, message, fields);
    }
}

impl context::Host for RunState {
    fn current(&mut self) -> context::RunContext {
        let now = current::context::Host::current(self);
        context::RunContext {
            flow_run_id: now.flow_run_id,
            flow_name: now.flow_name,
            deployment_name: now.deployment_name,
            attempt: now.attempt,
            task_run_id: now.task_run_id,
        }
    }
}

impl tasks::Host for RunState {
    async fn begin(&mut self, name: String, options: tasks::TaskOptions) -> wasmtime::Result<tasks::BeginOutcome> {
        let options = current::tasks::TaskOptions {
            retries: options.retries,
            retry_delays_ms: options.retry_delays_ms,
            timeout_ms: options.timeout_ms,
            cache_key: options.cache_key,
            cache_expiration_ms: None,
        };
        Ok(match current::tasks::Host::begin(self, name, options).await? {
            current::tasks::BeginOutcome::Run(id) => tasks::BeginOutcome::Run(id),
            current::tasks::BeginOutcome::Cached(json) => tasks::BeginOutcome::Cached(json),
        })
    }

    async fn end(
        &mut self,
        task_run_id: String,
        outcome: Result<String, WitError>,
    ) -> wasmtime::Result<tasks::NextStep> {
        Ok(match current::tasks::Host::end(self, task_run_id, outcome).await? {
            current::tasks::NextStep::Finish => tasks::NextStep::Finish,
            current::tasks::NextStep::Retry => tasks::NextStep::Retry,
        })
    }

    async fn call(&mut self, name: String, input: String) -> wasmtime::Result<Result<String, WitError>> {
        current::tasks::Host::call(self, name, input).await
    }

    async fn submit(&mut self, name: String, input: String) -> wasmtime::Result<Result<Resource<Submitted>, WitError>> {
        current::tasks::Host::submit(self, name, input).await
    }
}

impl tasks::HostSubmittedTask for RunState {
    async fn wait(&mut self, task: Resource<Submitted>) -> wasmtime::Result<Result<String, WitError>> {
        current::tasks::HostSubmittedTask::wait(self, task).await
    }

    async fn drop(&mut self, task: Resource<Submitted>) -> wasmtime::Result<()> {
        current::tasks::HostSubmittedTask::drop(self, task).await
    }
}
