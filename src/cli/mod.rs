//! Command-line parsing and dispatch. Each domain has its own file with its subcommands.

mod backend;
mod bundle;
mod call;
mod calls;
mod daemon;
mod output;
mod pkg;
mod progress;
mod project;
mod runtime;
mod venv;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Beep Python Host: a private Python you control.
#[derive(Debug, Parser)]
#[command(name = "beep-host", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install the default runtime (newest 3.12 unless configured) and make it the default.
    Init(runtime::InitArgs),
    /// Manage Python runtimes.
    #[command(subcommand)]
    Runtime(runtime::RuntimeCommand),
    /// Check the configuration: directories, default runtime, catalog, mirror.
    Config(runtime::ConfigArgs),
    /// Manage virtual environments.
    #[command(subcommand)]
    Venv(venv::VenvCommand),
    /// Install, remove and list packages in an environment.
    #[command(subcommand)]
    Pkg(pkg::PkgCommand),
    /// Run the daemon in the foreground, serving the host API on the given loopback addresses.
    Serve(daemon::ServeArgs),
    /// The daemon that owns this home's backends (started on demand by every command).
    Daemon(daemon::DaemonArgs),
    /// Start a Python backend (http, pipe or rpc) in an environment.
    Start(backend::StartArgs),
    /// List the backends: state, pid, endpoint, CPU, memory, uptime, restarts.
    Ps(backend::PsArgs),
    /// Forget an ended backend (its record; the log file stays).
    Rm(backend::RmArgs),
    /// Stop a backend (or all of them).
    Stop(backend::StopArgs),
    /// Restart a backend.
    Restart(backend::RestartArgs),
    /// Print a backend's log.
    Logs(backend::LogsArgs),
    /// Send one operation to a backend and print the answer as JSON.
    Call(call::CallArgs),
    /// Run Python statements in a backend (Ctrl+C interrupts them).
    Exec(call::ExecArgs),
    /// Evaluate a Python expression in a backend.
    Eval(call::EvalArgs),
    /// Interrupt the call a backend is running (it raises KeyboardInterrupt).
    Interrupt(call::InterruptArgs),
    /// List a backend's recent calls: id, op, state, start, duration, output size.
    Calls(calls::CallsArgs),
    /// Follow a call again: its output so far (after --after), then live, then its value.
    Attach(calls::AttachArgs),
    /// Resolve a project's requirements (beep.toml) into beep.lock (pylock.toml format).
    Lock(project::ProjectArgs),
    /// Bring a project to what beep.toml and beep.lock declare: runtime, environment, backends.
    Up(project::UpArgs),
    /// Stop a project's backends.
    Down(project::ProjectArgs),
    /// Show a project's declaration beside what is installed and running.
    Status(project::ProjectArgs),
    /// Write an offline bundle of a project (runtime, wheels, lock), or inspect one.
    Bundle(bundle::BundleArgs),
}

/// `beep-host runtime list | head -1`: when the reader of stdout (or stderr) is gone, end
/// quietly like other command-line tools (SIGPIPE), instead of the panic of a failed
/// `println!`. Not for `serve`, `daemon` and `start`, which run for long and whose sockets must see
/// a closed peer as an error, not end the process.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    beep_host::daemon::runs_the_daemon();
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Daemon(_) | Command::Start(_)
    ) {
        end_quietly_on_a_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: Failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Init(args) => runtime::init(args).await,
            Command::Runtime(cmd) => runtime::run(cmd).await,
            Command::Config(args) => runtime::config(args).await,
            Command::Venv(cmd) => venv::run(cmd).await,
            Command::Pkg(cmd) => pkg::run(cmd).await,
            Command::Serve(args) => daemon::serve(args).await,
            Command::Daemon(args) => daemon::daemon(args).await,
            Command::Start(args) => backend::start(args).await,
            Command::Ps(args) => backend::ps(args).await,
            Command::Rm(args) => backend::rm(args).await,
            Command::Stop(args) => backend::stop(args).await,
            Command::Restart(args) => backend::restart(args).await,
            Command::Logs(args) => backend::logs(args).await,
            Command::Call(args) => call::call(args).await,
            Command::Exec(args) => call::exec(args).await,
            Command::Eval(args) => call::eval(args).await,
            Command::Interrupt(args) => call::interrupt(args).await,
            Command::Calls(args) => calls::calls(args).await,
            Command::Attach(args) => calls::attach(args).await,
            Command::Lock(args) => project::lock(args).await,
            Command::Up(args) => project::up(args).await,
            Command::Down(args) => project::down(args).await,
            Command::Status(args) => project::status(args).await,
            Command::Bundle(args) => bundle::bundle(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&err);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument and flag of every subcommand, and every subcommand, says what it is.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !arg.is_hide_set() && !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path}: {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("{path}: the command itself"));
                }
                walk(sub, &path, missing);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&command, "beep-host", &mut missing);
        assert!(
            missing.is_empty(),
            "without help text:\n{}",
            missing.join("\n")
        );
    }

    /// `stop` alone says it needs an id or `--all`.
    #[test]
    fn stop_without_arguments_names_all() {
        let err = Cli::try_parse_from(["beep-host", "stop"]).unwrap_err();
        let text = err.render().to_string();
        assert!(text.contains("<ID|--all>"), "{text}");
    }
}
