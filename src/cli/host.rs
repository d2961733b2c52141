//! `beep-host serve`: the host API on loopback until Ctrl+C or SIGTERM.

use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use beep_host::backend::Supervisor;
use beep_host::host::{self, Host};
use beep_host::{Config, Paths};

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

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    let supervisor = Supervisor::new(paths.clone());
    let host = Arc::new(Host::new(paths, config, supervisor.clone())?);
    let shutdown = CancellationToken::new();
    let (served, done) = host::serve(
        host,
        (!args.no_http).then_some(args.http),
        (!args.no_grpc).then_some(args.grpc),
        shutdown.clone(),
    )
    .await?;
    // One JSON line, like the backends' ready line.
    println!(
        "{}",
        serde_json::json!({
            "event": "ready",
            "http": served.http.map(|a| a.to_string()),
            "grpc": served.grpc.map(|a| a.to_string()),
            "record": served.record,
            "pid": std::process::id(),
        })
    );
    wait_for_signal().await;
    eprintln!("Stopping: the host API and the backends it started.");
    shutdown.cancel();
    supervisor.stop_own().await;
    let _ = done.await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
