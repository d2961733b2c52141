//! `lock`, `up`, `down`, `status`: a project folder's `beep.toml` made real.

use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use beep_host::project::{Action, ProjectStatus, Projects, UpReport};
use beep_host::{Config, Paths, Reporter};

use super::output::{print_json, print_table};
use super::progress::BarReporter;
use super::venv::StderrReporter;

#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// The project folder (holding beep.toml); the current folder by default.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// Install from this offline bundle (`beep-host bundle`) only, without the network; it is verified before anything is written.
    #[arg(long)]
    bundle: Option<PathBuf>,
}

fn projects() -> anyhow::Result<Projects> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    Ok(Projects::new(paths, config))
}

/// On a terminal a bar, with the tools' lines printed above it; elsewhere the lines alone
/// on stderr.
enum Steps {
    Bar(BarReporter),
    Lines,
}

impl Steps {
    fn new() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bar(BarReporter::new(true))
        } else {
            Self::Lines
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish();
        }
    }
}

impl Reporter for Steps {
    fn report(&self, progress: beep_host::Progress) {
        match self {
            Self::Bar(bar) => bar.report(progress),
            Self::Lines => StderrReporter.report(progress),
        }
    }
}

pub async fn lock(args: ProjectArgs) -> anyhow::Result<ExitCode> {
    let steps = Steps::new();
    let lock = projects()?.lock(&args.dir, &steps).await;
    steps.finish();
    let lock = lock?;
    if args.json {
        print_json(&serde_json::json!({
            "path": lock.path,
            "sha256": lock.hash,
            "runtime": lock.beep.runtime,
            "packages": lock.packages.iter().map(|(n, v)| serde_json::json!({"name": n, "version": v})).collect::<Vec<_>>(),
        }))?;
    } else {
        println!(
            "Locked {} packages for Python {} in {}",
            lock.packages.len(),
            lock.beep.runtime.version(),
            lock.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let steps = Steps::new();
    let report = match &args.bundle {
        Some(bundle) => super::bundle::up(bundle, &args.project.dir, &steps).await,
        None => projects()?
            .up(&args.project.dir, &steps)
            .await
            .map_err(anyhow::Error::from),
    };
    steps.finish();
    let args = args.project;
    let report = report?;
    if args.json {
        print_json(&report)?;
    } else {
        print_up(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_up(report: &UpReport) {
    if !report.changed() {
        println!(
            "Nothing to do: {} is up (environment `{}` in sync, {} backend{} running as declared)",
            report.dir.display(),
            report.environment,
            report.backends.len(),
            if report.backends.len() == 1 { "" } else { "s" }
        );
        return;
    }
    if report.runtime_installed {
        println!(
            "Installed runtime {}",
            report.runtime.as_deref().unwrap_or("?")
        );
    }
    if report.locked {
        println!(
            "Wrote {}",
            report.dir.join(beep_host::project::LOCK_FILE).display()
        );
    }
    if report.environment_created {
        println!("Created environment `{}`", report.environment);
    }
    if report.environment_synced {
        println!("Synced environment `{}` to the lock", report.environment);
    }
    for b in &report.backends {
        let what = match b.action {
            Action::Unchanged => "unchanged",
            Action::Started => "started",
            Action::Restarted => "restarted",
            Action::Stopped => "stopped",
        };
        println!(
            "backend {} {what}{}{}",
            b.name,
            b.id.as_ref()
                .map(|id| format!(" ({id})"))
                .unwrap_or_default(),
            b.address
                .as_ref()
                .filter(|_| b.action != Action::Stopped)
                .map(|a| format!(": {a}"))
                .unwrap_or_default()
        );
    }
}

pub async fn down(args: ProjectArgs) -> anyhow::Result<ExitCode> {
    let stopped = projects()?.down(&args.dir, &StderrReporter).await?;
    if args.json {
        print_json(&stopped)?;
    } else if stopped.is_empty() {
        let dir = std::fs::canonicalize(&args.dir).unwrap_or(args.dir);
        println!("Nothing to do: no backend of {} runs", dir.display());
    } else {
        for b in &stopped {
            println!(
                "backend {} stopped{}",
                b.name,
                b.id.as_ref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(args: ProjectArgs) -> anyhow::Result<ExitCode> {
    let status = projects()?.status(&args.dir).await?;
    if args.json {
        print_json(&status)?;
    } else {
        print_status(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(s: &ProjectStatus) {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("project      {}", s.dir.display());
    println!(
        "runtime      {} -> {} (present: {})",
        s.python,
        s.runtime.as_deref().unwrap_or("not locked"),
        yes_no(s.runtime_present)
    );
    println!(
        "lock         {}",
        match (s.lock_present, s.lock_current) {
            (false, _) => "missing (`beep-host lock` or `up`)",
            (true, false) => "stale: beep.toml changed since",
            (true, true) => "current",
        }
    );
    println!(
        "environment  {} ({})",
        s.environment,
        match (s.environment_present, s.environment_in_sync) {
            (false, _) => "missing",
            (true, false) => "out of sync with the lock",
            (true, true) => "in sync with the lock",
        }
    );
    let rows: Vec<Vec<String>> = s
        .backends
        .iter()
        .map(|b| {
            vec![
                b.name.clone(),
                b.id.as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into()),
                b.state
                    .map(|st| st.to_string())
                    .unwrap_or_else(|| "not running".into()),
                match (&b.health, b.healthy) {
                    (None, _) => "-".into(),
                    (Some(h), None) => format!("probe every {} ms", h.every_ms),
                    (Some(_), Some(true)) => "healthy".into(),
                    (Some(_), Some(false)) => "unhealthy".into(),
                },
                match (b.rss_bytes, b.memory_limit) {
                    (Some(rss), Some(limit)) => format!("{} / {}", mib(rss), mib(limit)),
                    (Some(rss), None) => mib(rss),
                    (None, Some(limit)) => format!("- / {}", mib(limit)),
                    (None, None) => "-".into(),
                },
                if !b.declared {
                    "no longer declared".into()
                } else if b.current {
                    "as declared".into()
                } else {
                    "differs: `up` restarts it".into()
                },
            ]
        })
        .collect();
    if !rows.is_empty() {
        println!();
        print_table(
            &["BACKEND", "ID", "STATE", "HEALTH", "MEMORY", "DECLARATION"],
            &rows,
        );
    }
    println!();
    println!(
        "{}",
        if s.up_to_date {
            "up to date"
        } else {
            "not up to date: `beep-host up` converges"
        }
    );
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}
