//! The exit codes of the public contract, in one place.
//!
//! 127 is never used: syslog-ng reads it as "command not found" and stops the
//! program() destination until the next reload (docs/syslog-ng.md).

use std::process::ExitCode;

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done (exit 0).
    Done,
    /// Rotated (or nothing to rotate) but some file is still waiting to be shipped (exit 3, retryable).
    Pending,
    /// A file is kept pending by an error that retrying will not fix (exit 1; the message says what to fix).
    Failed,
}

/// Exit status: 0 done, 1 error, 2 usage or configuration error, 3 something is still
/// pending, 70 internal error (a panic in any thread: [`crate::crash`]; EX_SOFTWARE of
/// sysexits.h).
pub const OK: u8 = 0;
pub const ERROR: u8 = 1;
pub const USAGE: u8 = 2;
pub const PENDING: u8 = 3;
pub const PANIC: u8 = 70;

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Done => OK,
            Outcome::Pending => PENDING,
            Outcome::Failed => ERROR,
        })
    }
}
