//! A just-style command builder for the CLI tests: say what a run must do (exit status, text
//! its stdout or stderr contains or must not contain), run it, and get one failure message
//! with the command line and both streams when it does not.
//!
//! ```ignore
//! env.cmd("rotate", &["--keep=-1"]).status(2).stderr_has("--keep \"-1\" is not valid").run();
//! ```

use super::TestEnv;
use std::ffi::OsStr;
use std::process::{Command, Output};

pub struct Cmd {
    command: Command,
    status: Option<i32>,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr_lacks: Vec<String>,
}

/// What a run printed, once its expectations held.
pub struct Ran {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
}

impl Cmd {
    pub fn new(command: Command) -> Cmd {
        Cmd {
            command,
            status: None,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
            stdout_lacks: Vec::new(),
            stderr_lacks: Vec::new(),
        }
    }

    /// The exit status the run must end with.
    pub fn status(mut self, code: i32) -> Cmd {
        self.status = Some(code);
        self
    }

    pub fn stdout_has(mut self, text: impl Into<String>) -> Cmd {
        self.stdout_has.push(text.into());
        self
    }

    pub fn stderr_has(mut self, text: impl Into<String>) -> Cmd {
        self.stderr_has.push(text.into());
        self
    }

    pub fn stdout_lacks(mut self, text: impl Into<String>) -> Cmd {
        self.stdout_lacks.push(text.into());
        self
    }

    pub fn stderr_lacks(mut self, text: impl Into<String>) -> Cmd {
        self.stderr_lacks.push(text.into());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.command.env_remove(key);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.command.arg(arg);
        self
    }

    /// The command, to change what the builder does not cover (stdin, stdout).
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    /// Runs the command and checks every expectation; panics naming all that failed.
    pub fn run(self) -> Ran {
        self.finish(None)
    }

    /// As [`Cmd::run`], with the test environment's dump in the failure message.
    pub fn run_in(self, env: &TestEnv) -> Ran {
        self.finish(Some(env))
    }

    fn finish(mut self, env: Option<&TestEnv>) -> Ran {
        let output = self
            .command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.command));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let mut failed = Vec::new();
        if let Some(code) = self.status {
            if output.status.code() != Some(code) {
                failed.push(format!("exit status {code}, got {}", output.status));
            }
        }
        for (wanted, stream, name) in [
            (&self.stdout_has, &stdout, "stdout"),
            (&self.stderr_has, &stderr, "stderr"),
        ] {
            for text in wanted.iter().filter(|t| !stream.contains(t.as_str())) {
                failed.push(format!("{name} containing {text:?}"));
            }
        }
        for (unwanted, stream, name) in [
            (&self.stdout_lacks, &stdout, "stdout"),
            (&self.stderr_lacks, &stderr, "stderr"),
        ] {
            for text in unwanted.iter().filter(|t| stream.contains(t.as_str())) {
                failed.push(format!("{name} without {text:?}"));
            }
        }
        if !failed.is_empty() {
            panic!(
                "{:?}\nexpected {}\n--- stdout\n{stdout}--- stderr\n{stderr}{}",
                self.command,
                failed.join("; "),
                env.map_or(String::new(), TestEnv::dump)
            );
        }
        Ran {
            output,
            stdout,
            stderr,
        }
    }
}
