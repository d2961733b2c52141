//! Command-line parsing and dispatch. Each domain has its own file with its subcommands.

mod backend;
mod daemon;
mod output;
mod pkg;
mod progress;
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
    Call(backend::CallArgs),
    /// Run Python statements in a backend.
    Exec(backend::ExecArgs),
    /// Evaluate a Python expression in a backend.
    Eval(backend::EvalArgs),
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
            Command::Call(args) => backend::call(args).await,
            Command::Exec(args) => backend::exec(args).await,
            Command::Eval(args) => backend::eval(args).await,
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
