//! The exit codes of the public contract, in one place.
//!
//! 127 is never used: syslog-ng reads it as "command not found" and stops the
//! program() destination until the next reload (docs/syslog-ng.md).

use crate::config::ConfigError;
use anyhow::Result;
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

/// The one mapping from how a command ended to its exit status. An error is a usage error
/// when it is about the command line or the configuration (clap's, or a [`ConfigError`]
/// anywhere in its chain); every other error, and a file kept by a permanent error, is 1.
/// A panic never gets here: the panic hook exits with [`PANIC`] itself.
pub fn code(ended: &Result<Outcome>) -> u8 {
    match ended {
        Ok(Outcome::Done) => OK,
        Ok(Outcome::Pending) => PENDING,
        Ok(Outcome::Failed) => ERROR,
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => USAGE,
        Err(e) if e.downcast_ref::<clap::Error>().is_some() => USAGE,
        Err(_) => ERROR,
    }
}

/// [`code`] as the process's exit code.
pub fn exit_code(ended: &Result<Outcome>) -> ExitCode {
    ExitCode::from(code(ended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{anyhow, Context};

    #[test]
    fn each_ending_has_its_code() {
        assert_eq!(code(&Ok(Outcome::Done)), 0);
        assert_eq!(code(&Ok(Outcome::Failed)), 1);
        assert_eq!(code(&Ok(Outcome::Pending)), 3);
        assert_eq!(code(&Err(anyhow!("cannot list /var/log"))), 1);
        let config = Err(ConfigError("--quiet \"0s\" must be longer than zero".into()).into());
        assert_eq!(code(&config), 2);
        assert_eq!(code(&config.context("cannot start")), 2);
        let clap = clap::Error::new(clap::error::ErrorKind::InvalidValue);
        assert_eq!(code(&Err(clap.into())), 2);
        assert_eq!(PANIC, 70);
    }
}
