//! `start`, `ps`, `stop`, `restart`, `logs`: the backends (`call`, `exec`, `eval` are in
//! `call.rs`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use beep_host::Paths;
use beep_host::backend::{
    self, BackendEvent, BackendId, BackendOptions, BackendState, BackendStatus, HealthCheck,
    RestartPolicy, Transport,
};
use beep_host::daemon::{DaemonClient, StartSpec};
use beep_host::venv::EnvName;
use futures_util::StreamExt;

use super::output::{print_json, print_table};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The transport: http, pipe or rpc (gRPC).
    transport: Transport,
    /// The environment to run in.
    #[arg(long, default_value = "admin")]
    venv: EnvName,
    /// Run on this runtime's own interpreter instead of an environment: a key from
    /// `beep-host runtime list`, a version (`3.12`) or an interpreter path.
    #[arg(long, value_name = "RUNTIME", conflicts_with = "venv")]
    runtime: Option<String>,
    /// Restart the backend when it crashes: never or on-failure.
    #[arg(long, default_value = "never")]
    restart: RestartPolicy,
    /// Leave the backend running (the daemon keeps it) and return.
    #[arg(long)]
    detach: bool,
    /// Seconds to wait for the backend to report ready.
    #[arg(long, default_value_t = 30.0)]
    ready_timeout: f64,
    /// An environment variable of the Python process (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env_var)]
    env_vars: Vec<(String, String)>,
    /// The working directory of the Python process (default: the environment's folder).
    #[arg(long)]
    cwd: Option<std::path::PathBuf>,
    /// `module:function` run once before ready; its value is bound to the function's name
    /// in the default session. An exception fails the start.
    #[arg(long, value_name = "MODULE:FUNC")]
    preload: Option<String>,
    /// Probe the backend with `info` this often (e.g. `5s`); unanswered probes make it
    /// unhealthy, and it is restarted by its policy.
    #[arg(long, value_name = "DURATION", value_parser = backend::spec::parse_duration)]
    health_every: Option<Duration>,
    /// How long a health probe waits for its answer (default 2s).
    #[arg(long, value_name = "DURATION", value_parser = backend::spec::parse_duration)]
    health_timeout: Option<Duration>,
    /// Unanswered probes in a row that make the backend unhealthy (default 3).
    #[arg(long, value_name = "N")]
    health_failures: Option<u32>,
    /// Stop the backend (then restart it by policy) when its process tree uses more
    /// resident memory than this (e.g. `2GiB`).
    #[arg(long, value_name = "SIZE", value_parser = backend::spec::parse_bytes)]
    memory_limit: Option<u64>,
}

fn parse_env_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains('\0') => {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("invalid variable `{text}` (expected KEY=VALUE)")),
    }
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
    /// Also list backends stopped by hand (crashed and lost ones are always listed).
    #[arg(long, short)]
    all: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The ended backends to forget.
    #[arg(required = true)]
    ids: Vec<BackendId>,
}

#[derive(Debug, Args)]
#[group(id = "which", required = true, multiple = false)]
pub struct StopArgs {
    /// The backend to stop (an id from `beep-host ps`).
    id: Option<BackendId>,
    /// Stop every backend.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The backend (an id from `beep-host ps`).
    id: BackendId,
    /// Keep printing new lines until the backend ends (or Ctrl+C).
    #[arg(long, short)]
    follow: bool,
    /// How many of the last lines to print first.
    #[arg(long, short = 'n', default_value_t = 50)]
    lines: usize,
}

/// The home's daemon (started when none runs).
pub(super) async fn daemon() -> anyhow::Result<DaemonClient> {
    Ok(DaemonClient::connect(&Paths::from_env()?).await?)
}

fn spec_of(args: &StartArgs) -> anyhow::Result<StartSpec> {
    let cwd = match &args.cwd {
        Some(dir) => Some(
            std::path::absolute(dir)
                .with_context(|| format!("Failed to resolve `{}`", dir.display()))?,
        ),
        None => None,
    };
    let health_asked = args.health_every.is_some()
        || args.health_timeout.is_some()
        || args.health_failures.is_some();
    let health = health_asked.then(|| HealthCheck {
        every_ms: args
            .health_every
            .unwrap_or(Duration::from_secs(5))
            .as_millis() as u64,
        timeout_ms: args
            .health_timeout
            .unwrap_or(Duration::from_secs(2))
            .as_millis() as u64,
        failures: args.health_failures.unwrap_or(3).max(1),
    });
    Ok(StartSpec {
        env: args.venv.to_string(),
        runtime: args.runtime.clone(),
        transport: args.transport,
        restart: args.restart,
        ready_timeout_ms: (args.ready_timeout.max(0.1) * 1000.0) as u64,
        options: BackendOptions {
            env_vars: args.env_vars.iter().cloned().collect(),
            cwd,
            preload: args.preload.clone(),
            health,
            memory_limit: args.memory_limit,
            ..Default::default()
        },
    })
}

/// Ask the daemon to start a backend. In the foreground, follow its state until Ctrl+C,
/// which stops it; `--detach` returns at once.
pub async fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    // Listen before anything is printed: a Ctrl+C right after "ready" stops the backend.
    let mut ctrl_c = super::call::CtrlC::listen().context("Failed to listen for Ctrl+C")?;
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let client = daemon().await?;
    let status = client.start(spec_of(&args)?).await?;
    let id = status.id.clone();
    print_endpoint(&status);
    if args.detach {
        say(&format!(
            "  Detached: it runs until `beep-host stop {id}` (daemon pid {}).",
            client.pid()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    say("  Ctrl+C stops it.");
    let stopper = daemon().await?;
    let mut events = client.watch().await?;
    loop {
        #[cfg(unix)]
        let terminated = term.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            () = ctrl_c.recv() => {
                eprintln!("stopping backend {id}");
                stopper.stop(&id).await?;
                return Ok(ExitCode::SUCCESS);
            }
            _ = terminated => {
                stopper.stop(&id).await?;
                return Ok(ExitCode::SUCCESS);
            }
            event = events.next() => {
                match event {
                    None => bail!("Failed to follow backend `{id}`: the daemon went away"),
                    Some(BackendEvent::State { id: which, state, pid, last_exit }) if which == id => {
                        let exit = last_exit
                            .as_ref()
                            .filter(|_| matches!(state, BackendState::Crashed | BackendState::Restarting))
                            .map(|e| format!(" ({})", e.describe()))
                            .unwrap_or_default();
                        let pid = pid.map(|p| format!(" pid {p}")).unwrap_or_default();
                        eprintln!("backend {id}: {state}{pid}{exit}");
                    }
                    Some(BackendEvent::Ended { id: which, state, last_exit }) if which == id => {
                        if state.is_failure() {
                            eprintln!("backend {id}: {state}; not restarting");
                            for line in last_exit.iter().flat_map(|e| &e.last_lines) {
                                eprintln!("  | {line}");
                            }
                            return Ok(ExitCode::FAILURE);
                        }
                        eprintln!("backend {id}: {state}");
                        return Ok(ExitCode::SUCCESS);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// What `start` prints; a closed stdout (`| head`) does not stop the command, which
/// still follows and stops its backend.
fn print_endpoint(status: &BackendStatus) {
    let id = &status.id;
    say(&format!(
        "backend {id} ready: {} {}, pid {}\n  address: {}\n  token:   field \"token\" of {} (mode 0600)\n  try:     beep-host eval {id} '1+1'\n  logs:    beep-host logs {id} --follow",
        status.transport,
        match &status.runtime {
            Some(runtime) => format!("on runtime `{}`", runtime.key),
            None => format!("in environment `{}`", status.env),
        },
        status.pid.unwrap_or(0),
        status.address.as_deref().unwrap_or("-"),
        status.record.display(),
    ));
}

/// One line (or several) on stdout, flushed; a failed write is ignored.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// The STATE column: `crashed: signal 9 (SIGKILL)`, `lost: ...`, else the state.
fn state_text(s: &BackendStatus) -> String {
    match (&s.last_exit, s.state.is_failure()) {
        (Some(exit), true) => {
            let why = exit.describe();
            if why.starts_with(s.state.as_str()) {
                why
            } else {
                format!("{}: {why}", s.state)
            }
        }
        _ if s.busy => "busy".to_string(),
        _ => s.state.to_string(),
    }
}

pub async fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    let listing = daemon().await?.list_with_busy().await?;
    let list: Vec<&BackendStatus> = listing
        .backends
        .iter()
        .filter(|s| args.all || s.state != BackendState::Stopped)
        .collect();
    for bad in &listing.unreadable {
        eprintln!(
            "warning: backend record `{}` is unreadable ({}){}; `beep-host stop {}` stops what it names, `beep-host rm {}` removes it",
            bad.path.display(),
            bad.error,
            bad.pid
                .map(|p| format!(", it names pid {p}"))
                .unwrap_or_default(),
            bad.id.as_ref().map(|i| i.as_str()).unwrap_or("?"),
            bad.id.as_ref().map(|i| i.as_str()).unwrap_or("?"),
        );
    }
    if args.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.place_text(),
                s.transport.to_string(),
                s.address.clone().unwrap_or_else(|| "-".into()),
                state_text(s),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                format!("{:.1}%", s.cpu_percent),
                match s.options.memory_limit {
                    // The limit beside the use: `40.2 MiB / 64.0 MiB`.
                    Some(limit) => format!(
                        "{} / {}",
                        format_bytes(s.rss_bytes),
                        backend::spec::format_bytes(limit)
                    ),
                    None => format_bytes(s.rss_bytes),
                },
                format_duration(s.uptime_secs),
                s.restarts.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "ENV",
            "TRANSPORT",
            "ADDRESS",
            "STATE",
            "PID",
            "CPU",
            "RSS",
            "UPTIME",
            "RESTARTS",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn format_bytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn format_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub async fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    let client = daemon().await?;
    if args.all {
        for id in client.stop_all().await? {
            eprintln!("stopped {id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = args.id.expect("clap requires an id without --all");
    client.stop(&id).await?;
    eprintln!("stopped {id}");
    Ok(ExitCode::SUCCESS)
}

pub async fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    let client = daemon().await?;
    for id in &args.ids {
        client.remove(id).await?;
        eprintln!("removed {id}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn restart(args: RestartArgs) -> anyhow::Result<ExitCode> {
    let status = daemon().await?.restart(&args.id).await?;
    eprintln!(
        "restarted {}: pid {}",
        args.id,
        status.pid.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = daemon().await?;
    let path = match client.status(&args.id).await {
        Ok(status) => status.log_file,
        Err(_) => client.paths().logs().join(format!("{}.log", args.id)),
    };
    if !path.exists() {
        return Err(backend::Error::NotFound { id: args.id }.into());
    }
    let lines = backend::log::read_tail(&path, args.lines)
        .with_context(|| format!("Failed to read `{}`", path.display()))?;
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    drop(out);
    if args.follow {
        follow(&client, &args.id, &path).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Print what is appended to `path` until the backend has ended.
async fn follow(client: &DaemonClient, id: &BackendId, path: &Path) -> anyhow::Result<()> {
    let mut offset = fs_err::metadata(path)?.len();
    let mut last_check = Instant::now();
    loop {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // rotated
        }
        if len > offset {
            let mut file = fs_err::File::open(path)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            offset += buf.len() as u64;
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)?;
            out.flush()?;
        } else if last_check.elapsed() > Duration::from_secs(1) {
            last_check = Instant::now();
            match client.status(id).await {
                Ok(status) if !status.state.is_final() => {}
                _ => return Ok(()),
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
