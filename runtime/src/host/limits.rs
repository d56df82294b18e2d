//! The memory cap, enforced by wasmtime's resource limiter.

use crate::sandbox::LimitExceeded;

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
