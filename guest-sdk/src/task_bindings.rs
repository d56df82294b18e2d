//! The guest side of the `task` world of `weft:flow`: only its export, the
//! imports being those of [`bindings`](super::bindings). Kept apart from the
//! flow world's bindings so that a task component declares the `task` world
//! and a flow the `flow` world. Guests never name these directly:
//! `#[weft::task_component]` does.
#![allow(unsafe_code, missing_docs, unused_qualifications, clippy::all)]

wit_bindgen::generate!({
    path: "../wit/weft-flow@0.2.0",
    world: "task",
    pub_export_macro: true,
    export_macro_name: "__export_task",
    default_bindings_module: "::weft::__private::task_bindings",
    runtime_path: "::weft::__private::wit_bindgen::rt",
    with: {
        "weft:flow/types@0.2.0": crate::__private::bindings::weft::flow::types,
        "weft:flow/log@0.2.0": crate::__private::bindings::weft::flow::log,
        "weft:flow/context@0.2.0": crate::__private::bindings::weft::flow::context,
        "weft:flow/tasks@0.2.0": crate::__private::bindings::weft::flow::tasks,
    },
});
