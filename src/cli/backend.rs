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
    self, BackendEvent, BackendId, BackendRecord, BackendSpec, BackendState, BackendStatus,
    RestartPolicy, Supervisor, Transport, record,
};
use beep_host::venv::EnvName;

use super::output::{print_json, print_table};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The transport: http, pipe or rpc (gRPC).
    transport: Transport,
    /// The environment to run in.
    #[arg(long, default_value = "admin")]
    venv: EnvName,
    /// Restart the backend when it crashes: never or on-failure.
    #[arg(long, default_value = "never")]
    restart: RestartPolicy,
    /// Leave the backend running (under a background `beep-host` supervisor) and return.
    #[arg(long)]
    detach: bool,
    /// Seconds to wait for the backend to report ready.
    #[arg(long, default_value_t = 30.0)]
    ready_timeout: f64,
    /// Internal: run as the detached supervisor of backend ID.
    #[arg(long, hide = true)]
    supervise: Option<BackendId>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
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

fn supervisor() -> anyhow::Result<Supervisor> {
    Ok(Supervisor::new(Paths::from_env()?))
}

fn spec_of(args: &StartArgs) -> BackendSpec {
    let mut spec = BackendSpec::new(args.venv.clone(), args.transport).restart(args.restart);
    spec.ready_timeout = Duration::from_secs_f64(args.ready_timeout.max(0.1));
    spec.id = args.supervise.clone();
    spec
}

pub async fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let supervisor = supervisor()?;
    if args.detach {
        return detach(&supervisor, &args).await;
    }
    let quiet = args.supervise.is_some();
    let mut events = supervisor.subscribe();
    let id = supervisor.start(spec_of(&args)).await?;
    if !quiet {
        print_endpoint(&supervisor.status(&id)?);
        println!("  Ctrl+C stops it.");
        let _ = std::io::stdout().flush();
    }
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        #[cfg(unix)]
        let terminated = term.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping backend {id}");
                supervisor.stop(&id).await?;
                return Ok(ExitCode::SUCCESS);
            }
            _ = terminated => {
                supervisor.stop(&id).await?;
                return Ok(ExitCode::SUCCESS);
            }
            event = events.recv() => {
                match event {
                    Ok(BackendEvent::State { id: which, state, pid, last_exit }) if which == id => {
                        let exit = last_exit
                            .as_ref()
                            .filter(|_| matches!(state, BackendState::Crashed | BackendState::Restarting))
                            .map(|e| format!(" ({})", e.describe()))
                            .unwrap_or_default();
                        let pid = pid.map(|p| format!(" pid {p}")).unwrap_or_default();
                        eprintln!("backend {id}: {state}{pid}{exit}");
                    }
                    Ok(BackendEvent::Ended { id: which, state, last_exit }) if which == id => {
                        if state == BackendState::Crashed {
                            eprintln!("backend {id}: crashed; not restarting");
                            for line in last_exit.iter().flat_map(|e| &e.last_lines) {
                                eprintln!("  | {line}");
                            }
                            return Ok(ExitCode::FAILURE);
                        }
                        if quiet {
                            // The detached supervisor's own log is only kept when it failed.
                            let log = supervisor.paths().logs().join(format!("{id}.supervisor.log"));
                            let _ = fs_err::remove_file(log);
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Hand the backend to a background `beep-host start --supervise <id>` in its own session,
/// wait for its record to say ready, and return.
async fn detach(supervisor: &Supervisor, args: &StartArgs) -> anyhow::Result<ExitCode> {
    let paths = supervisor.paths();
    let id = BackendId::random();
    let exe = std::env::current_exe().context("Failed to find the current executable")?;
    fs_err::create_dir_all(paths.logs())?;
    let log = paths.logs().join(format!("{id}.supervisor.log"));
    let stderr = fs_err::File::create(&log)?;
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("start")
        .arg(args.transport.as_str())
        .arg("--venv")
        .arg(args.venv.as_str())
        .arg("--restart")
        .arg(match args.restart {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
        })
        .arg("--ready-timeout")
        .arg(args.ready_timeout.to_string())
        .arg("--supervise")
        .arg(id.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr.into_parts().0);
    #[cfg(unix)]
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .context("Failed to start the background supervisor")?;
    let record_path = record::path(&paths.backend_records(), &id);
    let deadline = Instant::now() + Duration::from_secs_f64(args.ready_timeout + 10.0);
    loop {
        if let Ok(record) = BackendRecord::read(&record_path)
            && record.state == BackendState::Ready
        {
            print_endpoint(&supervisor.status(&id)?);
            println!(
                "  Detached: it runs until `beep-host stop {id}` (supervisor pid {}).",
                record.supervisor_pid
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(status) = child.try_wait()? {
            let text = fs_err::read_to_string(&log).unwrap_or_default();
            let _ = fs_err::remove_file(&log);
            let text = text.trim().strip_prefix("error: ").unwrap_or(text.trim());
            bail!("{text} (background supervisor {status})");
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            bail!("Failed to start backend `{id}`: the background supervisor did not report ready");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_endpoint(status: &BackendStatus) {
    let id = &status.id;
    println!(
        "backend {id} ready: {} in environment `{}`, pid {}",
        status.transport,
        status.env,
        status.pid.unwrap_or(0)
    );
    println!("  address: {}", status.address.as_deref().unwrap_or("-"));
    println!(
        "  token:   field \"token\" of {} (mode 0600)",
        status.record.display()
    );
    println!("  try:     beep-host eval {id} '1+1'");
    println!("  logs:    beep-host logs {id} --follow");
}

pub async fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    let supervisor = supervisor()?;
    supervisor.refresh_stats().await;
    let list = supervisor.list();
    if args.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.env.clone(),
                s.transport.to_string(),
                s.address.clone().unwrap_or_else(|| "-".into()),
                s.state.to_string(),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                format!("{:.1}%", s.cpu_percent),
                format_bytes(s.rss_bytes),
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
    let supervisor = supervisor()?;
    if args.all {
        for id in supervisor.stop_all().await {
            eprintln!("stopped {id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = args.id.expect("clap requires an id without --all");
    supervisor.stop(&id).await?;
    eprintln!("stopped {id}");
    Ok(ExitCode::SUCCESS)
}

pub async fn restart(args: RestartArgs) -> anyhow::Result<ExitCode> {
    let supervisor = supervisor()?;
    supervisor.restart(&args.id).await?;
    let status = supervisor.status(&args.id)?;
    eprintln!(
        "restarted {}: pid {}",
        args.id,
        status.pid.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let supervisor = supervisor()?;
    let path = match supervisor.status(&args.id) {
        Ok(status) => status.log_file,
        Err(_) => supervisor.paths().logs().join(format!("{}.log", args.id)),
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
        follow(&supervisor, &args.id, &path).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Print what is appended to `path` until the backend is gone.
async fn follow(supervisor: &Supervisor, id: &BackendId, path: &Path) -> anyhow::Result<()> {
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
            match supervisor.status(id) {
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
