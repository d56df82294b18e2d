//! Logging from a guest: the `info!`, `warn!`, `error!`, `debug!` and
//! `trace!` macros and the function they call.

use crate::__private::bindings::weft::flow::log as wit;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Step-by-step detail.
    Trace,
    /// Detail useful while developing.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that was worked around.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one log line with key/value fields; the macros call this.
///
/// The host attributes the line to the current flow run and task run.
pub fn log(level: Level, message: &str, fields: &[(&str, String)]) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    let fields: Vec<wit::Field> =
        fields.iter().map(|(key, value)| wit::Field { key: (*key).to_owned(), value: value.clone() }).collect();
    wit::emit(level, message, &fields);
}

/// Logs a line at the given [`Level`]: `weft::log!(Level::Info, "loaded {} rows", n; table = "users")`.
///
/// The message is a `format!` string with its arguments; key/value fields
/// follow a `;`, each value formatted with `Display`.
#[macro_export]
macro_rules! log {
    ($level:expr, $fmt:literal $(, $arg:expr)* $(,)? ; $($key:ident = $value:expr),+ $(,)?) => {
        $crate::log(
            $level,
            &::std::format!($fmt $(, $arg)*),
            &[$((::core::stringify!($key), ::std::string::ToString::to_string(&$value))),+],
        )
    };
    ($level:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::log($level, &::std::format!($fmt $(, $arg)*), &[])
    };
}

/// Logs at level info: `weft::info!("Here's your data: {:?}", data; rows = data.len())`.
#[macro_export]
macro_rules! info {
    ($($t:tt)+) => { $crate::log!($crate::Level::Info, $($t)+) };
}

/// Logs at level warn; see [`info!`](crate::info).
#[macro_export]
macro_rules! warn {
    ($($t:tt)+) => { $crate::log!($crate::Level::Warn, $($t)+) };
}

/// Logs at level error; see [`info!`](crate::info).
#[macro_export]
macro_rules! error {
    ($($t:tt)+) => { $crate::log!($crate::Level::Error, $($t)+) };
}

/// Logs at level debug; see [`info!`](crate::info).
#[macro_export]
macro_rules! debug {
    ($($t:tt)+) => { $crate::log!($crate::Level::Debug, $($t)+) };
}

/// Logs at level trace; see [`info!`](crate::info).
#[macro_export]
macro_rules! trace {
    ($($t:tt)+) => { $crate::log!($crate::Level::Trace, $($t)+) };
}
