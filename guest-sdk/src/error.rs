//! The error a flow or task returns to the host.

use std::fmt;

/// An error with an explicit retry decision.
///
/// A flow or task may return any error type that implements `Display`; such
/// errors are treated as retryable (a deployment's or task's retry policy
/// applies). Return `weft::Error::fatal(..)` when retrying cannot help, for
/// instance because the input is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    retryable: bool,
}

impl Error {
    /// An error that a retry may cure (a timeout, an unavailable service).
    pub fn retryable(message: impl fmt::Display) -> Self {
        Error { message: message.to_string(), retryable: true }
    }

    /// An error that no retry will cure.
    pub fn fatal(message: impl fmt::Display) -> Self {
        Error { message: message.to_string(), retryable: false }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
