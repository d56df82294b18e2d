//! The caps on what a run writes (log lines, log volume, result size), as
//! flags shared by `weft run` and `weft runner`.

use clap::Args;

use weft::model::{Sandbox, parse_byte_limit};
use weft::sandbox::Limits;

/// `--max-log-line`, `--max-log-volume`, `--max-result`.
#[derive(Debug, Args)]
pub struct OutputLimitArgs {
    /// The longest log line kept; longer lines, and error messages, are cut
    /// and marked [default: 16KiB, or the deployment's `sandbox.max_log_line`]
    #[arg(long, value_name = "SIZE", env = "WEFT_MAX_LOG_LINE", value_parser = parse_byte_limit)]
    max_log_line: Option<u64>,
    /// The most log a run keeps; later lines are dropped and counted
    /// [default: 100MiB, or the deployment's `sandbox.max_log_volume`]
    #[arg(long, value_name = "SIZE", env = "WEFT_MAX_LOG_VOLUME", value_parser = parse_byte_limit)]
    max_log_volume: Option<u64>,
    /// The largest result a run may return; a larger one fails the run
    /// [default: 16MiB, or the deployment's `sandbox.max_result`]
    #[arg(long, value_name = "SIZE", env = "WEFT_MAX_RESULT", value_parser = parse_byte_limit)]
    max_result: Option<u64>,
}

impl OutputLimitArgs {
    /// `weft run`: the values given replace the defaults.
    pub fn set(&self, sandbox: &mut Sandbox) {
        if let Some(line) = self.max_log_line {
            sandbox.max_log_line = line;
        }
        if let Some(volume) = self.max_log_volume {
            sandbox.max_log_volume = volume;
        }
        if let Some(result) = self.max_result {
            sandbox.max_result = result;
        }
    }

    /// `weft runner`: the values given are the operator's ceilings over what
    /// a deployment asks for.
    pub fn cap(&self, limits: &mut Limits) {
        let lower = |current: &mut u64, ceiling: Option<u64>| *current = ceiling.map_or(*current, |c| c.min(*current));
        lower(&mut limits.log_line, self.max_log_line);
        lower(&mut limits.log_volume, self.max_log_volume);
        lower(&mut limits.result, self.max_result);
    }
}
