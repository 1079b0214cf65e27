//! Thin entry point: parse, run, map the outcome to an exit code.
use std::process::ExitCode;

fn main() -> ExitCode {
    fasttrack::main_entry(std::env::args_os())
}
