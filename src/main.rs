//! The `beep-host` command-line tool.
#![allow(clippy::print_stdout)] // The CLI writes its results to stdout.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
