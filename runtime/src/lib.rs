//! weft: a workflow runtime whose flows and tasks are WebAssembly components.
//!
//! This crate is the host: the [`engine`] that compiles and sandboxes
//! components, the [`host`] side of the `weft:flow` WIT interfaces, the
//! [`runner`] that executes one flow run, the [`store`] that is the control
//! plane, and the [`agent`] that launches runs. The types they share, with
//! no I/O, are the `weft-model` crate, re-exported here as [`model`] and
//! [`sandbox`]. The `weft` command is the `weft-cli` crate, and the web UI
//! `weft-ui`, both on top of this one.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use weft::engine::{Engine, EngineConfig};
//! use weft::runner::{FlowRunRequest, run_flow};
//!
//! let engine = Engine::new(&EngineConfig::default())?;
//! let flow = engine.load_flow(&std::fs::read("etl.wasm")?, "etl.wasm")?;
//! let request = FlowRunRequest::new(&flow, serde_json::json!({}))?;
//! let report = run_flow(&engine, &flow, request, Arc::new(weft::model::DiscardLogs)).await;
//! println!("{:?}", report.outcome);
//! # Ok(()) }
//! ```

pub mod agent;
pub mod engine;
pub mod host;
pub mod runner;
pub mod store;

pub use weft_model as model;
pub use weft_model::sandbox;
