//! `beep-host daemon`: the one owner of the home's backends (started by any client that
//! finds none), and `serve`, the same in the foreground with its addresses printed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use beep_host::daemon::{self, Daemon, DaemonClient, DaemonRecord, Options};
use beep_host::{Config, Paths};

use super::output::print_json;

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(subcommand)]
    command: Option<DaemonCommand>,
    /// Seconds with no running backend and no client before the daemon exits
    /// (default 600, or `BEEP_HOST_DAEMON_IDLE`).
    #[arg(long, env = daemon::IDLE_ENV)]
    idle: Option<f64>,
}

#[derive(Debug, Subcommand)]
enum DaemonCommand {
    /// Show the running daemon: pid, version, socket, host API addresses.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the daemon and every backend it runs.
    Stop,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP address (loopback only); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    http: SocketAddr,
    /// gRPC address (loopback only); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    grpc: SocketAddr,
    /// Serve no HTTP.
    #[arg(long, conflicts_with = "no_grpc")]
    no_http: bool,
    /// Serve no gRPC.
    #[arg(long)]
    no_grpc: bool,
}

pub async fn daemon(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    match args.command {
        None => {
            let mut options = Options::default();
            if let Some(idle) = args.idle {
                options.idle = Duration::from_secs_f64(idle.max(0.1));
            }
            let daemon = Daemon::bind(paths.clone(), Config::load(&paths)?, options).await?;
            tracing::info!(pid = std::process::id(), "daemon ready");
            daemon.serve().await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(DaemonCommand::Status { json }) => {
            let record = DaemonRecord::read(&paths).filter(DaemonRecord::alive);
            if json {
                print_json(&record)?;
            } else if let Some(r) = &record {
                println!(
                    "daemon pid {} (version {}, protocol {})",
                    r.pid, r.version, r.protocol
                );
                println!("  socket:   {}", r.socket);
                println!(
                    "  host API: http {} grpc {}",
                    r.http.as_deref().unwrap_or("-"),
                    r.grpc.as_deref().unwrap_or("-")
                );
            } else {
                println!("no daemon runs for this home");
            }
            Ok(if record.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Some(DaemonCommand::Stop) => {
            match DaemonClient::connect_existing(&paths).await? {
                Some(client) => {
                    let pid = client.pid();
                    client.shutdown().await?;
                    wait_gone(&paths).await;
                    eprintln!("stopped the daemon (pid {pid}) and its backends");
                }
                None => eprintln!("no daemon runs for this home"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Wait (at most 10 s) until the daemon's record is gone.
async fn wait_gone(paths: &Paths) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while DaemonRecord::read(paths).is_some_and(|r| r.alive())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The daemon in the foreground, serving the host API on the given addresses; prints one
/// JSON ready line and runs until Ctrl+C or SIGTERM (never idle).
pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let options = Options {
        idle: Duration::MAX,
        http: (!args.no_http).then_some(args.http),
        grpc: (!args.no_grpc).then_some(args.grpc),
        ..Options::default()
    };
    let daemon = Daemon::bind(paths.clone(), Config::load(&paths)?, options).await?;
    let record = daemon.record().clone();
    println!(
        "{}",
        serde_json::json!({
            "event": "ready",
            "http": record.http.as_deref().map(|a| a.trim_start_matches("http://")),
            "grpc": record.grpc,
            "record": paths.state.join(beep_host::host::RECORD_FILE),
            "pid": std::process::id(),
        })
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    daemon.serve().await?;
    eprintln!("Stopped: the host API and its backends.");
    Ok(ExitCode::SUCCESS)
}
