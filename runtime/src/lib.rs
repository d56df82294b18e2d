//! weft: a workflow runtime whose flows and tasks are WebAssembly components.
//!
//! This crate is the host: the [`engine`] that compiles and sandboxes
//! components, the [`host`] side of the `weft:flow` WIT interfaces, the
//! [`runner`] that executes one flow run, the [`model`] and [`sandbox`] types they share, and
//! the [`cli`] of the `weft` binary.
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
pub mod cli;
pub mod engine;
pub mod host;
pub mod model;
pub mod runner;
pub mod sandbox;
pub mod store;
