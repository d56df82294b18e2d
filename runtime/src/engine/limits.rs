//! Per-run limits: wall-clock deadline, memory cap, optional fuel.

use std::time::Duration;

/// What one flow run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for the whole run.
    pub timeout: Duration,
    /// Linear memory, in bytes, across all of the guest's memories.
    pub memory: u64,
    /// Fuel (roughly, WebAssembly instructions); needs an engine built with
    /// `EngineConfig::fuel`.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(3600), memory: 256 << 20, fuel: None }
    }
}

/// A limit the host enforced by stopping the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The run's wall-clock deadline passed.
    #[error("exceeded its {} deadline", humantime::format_duration(*.0))]
    Deadline(Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("tried to grow memory past {}", format_bytes(*limit))]
    Memory {
        /// The cap, in bytes.
        limit: u64,
    },
    /// An in-component task ran past its timeout.
    #[error("task `{task}` exceeded its {} timeout", humantime::format_duration(*timeout))]
    TaskTimeout {
        /// The task's name.
        task: String,
        /// Its timeout.
        timeout: Duration,
    },
}

/// Bytes for a person: `256 MiB`, `1.5 GiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} B")
}

/// Enforces the memory cap over all memories of one store, and a sane cap
/// on tables.
pub(crate) struct MemoryLimiter {
    limit: u64,
    used: u64,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter { limit, used: 0 }
    }
}

/// No guest needs tables this large; refusing them keeps a hostile guest
/// from using host memory through tables instead of linear memory.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        if self.used.saturating_add(growth) > self.limit {
            // Trapping (rather than letting `memory.grow` return -1) gives
            // the run a clear reason; most languages abort on a failed
            // allocation anyway.
            return Err(wasmtime::Error::new(LimitExceeded::Memory { limit: self.limit }));
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_well() {
        assert_eq!(LimitExceeded::Deadline(Duration::from_secs(5)).to_string(), "exceeded its 5s deadline");
        assert_eq!(LimitExceeded::Memory { limit: 256 << 20 }.to_string(), "tried to grow memory past 256 MiB");
        assert_eq!(format_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(format_bytes(100), "100 B");
    }
}
