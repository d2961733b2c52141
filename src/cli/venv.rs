//! `venv create|list|status|delete|admin`.

use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use beep_host::daemon::DaemonBackends;
use beep_host::venv::{
    AdminAction, CreateOptions, DeleteOptions, EnvName, Environments, PackageRequest,
};
use beep_host::{Config, Paths, Progress, Reporter};

use super::output::{print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum VenvCommand {
    /// Create an environment (from the default runtime unless --runtime).
    Create(CreateArgs),
    /// List environments.
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an environment: packages, disk size, pyvenv.cfg, backends.
    Status {
        /// The environment's name.
        name: EnvName,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an environment.
    Delete {
        /// The environment's name.
        name: EnvName,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Stop backends running in it first instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Create or repair the `admin` environment with the packages the backends need.
    Admin {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The new environment's name (a letter or digit, then letters, digits, `.`, `_`, `-`).
    name: EnvName,
    /// Runtime key, version (3.12) or interpreter path.
    #[arg(long)]
    runtime: Option<String>,
    /// A model id to record with the environment (in its beep-env.json; `venv list --json`).
    #[arg(long)]
    model_id: Option<String>,
    /// A provider name to record with the environment (in its beep-env.json; `venv list --json`).
    #[arg(long)]
    provider: Option<String>,
    /// Packages to install before the environment is ready.
    #[arg(long, num_args = 1..)]
    packages: Vec<String>,
    /// A requirements file to install before the environment is ready.
    #[arg(long, short)]
    requirements: Vec<PathBuf>,
    /// Print the new environment as JSON (installer output still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Prints installer output lines to stderr.
pub struct StderrReporter;

impl Reporter for StderrReporter {
    fn report(&self, progress: Progress) {
        match progress {
            Progress::Output { line } => eprintln!("{line}"),
            Progress::Done { message } => eprintln!("{message}"),
            _ => {}
        }
    }
}

pub fn environments() -> anyhow::Result<Environments> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    Ok(Environments::new(paths, config))
}

pub async fn run(cmd: VenvCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VenvCommand::Create(args) => {
            let options = CreateOptions {
                runtime: args.runtime,
                provider: args.provider,
                model_id: args.model_id,
                profile: None,
                packages: PackageRequest::new(args.packages, args.requirements),
            };
            let env = environments()?
                .create(&args.name, &options, &StderrReporter)
                .await?;
            if args.json {
                print_json(&env)?;
            } else {
                println!(
                    "Created environment `{}` at {} (Python {}, {})",
                    env.name,
                    env.path.display(),
                    env.python_version.as_deref().unwrap_or("?"),
                    env.installer.as_deref().unwrap_or("?"),
                );
            }
        }
        VenvCommand::List { json } => {
            let list = environments()?.list()?;
            if json {
                print_json(&list)?;
            } else {
                let rows = list
                    .iter()
                    .map(|e| {
                        vec![
                            e.name.clone(),
                            e.python_version.clone().unwrap_or_default(),
                            e.runtime.clone().unwrap_or_default(),
                            e.packages.to_string(),
                            if e.healthy { "yes" } else { "NO" }.to_string(),
                            e.created.clone().unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &[
                        "NAME", "PYTHON", "RUNTIME", "PACKAGES", "HEALTHY", "CREATED",
                    ],
                    &rows,
                );
                for e in &list {
                    if let Some(problem) = &e.problem {
                        eprintln!("`{}` is broken: {problem}", e.name);
                    }
                }
            }
        }
        VenvCommand::Status { name, json } => {
            let envs = environments()?;
            let running = DaemonBackends::ask(envs.paths()).await?;
            let status = envs.status(&name, &running)?;
            if json {
                print_json(&status)?;
            } else {
                let env = &status.environment;
                println!("name:      {}", env.name);
                println!("path:      {}", env.path.display());
                println!(
                    "python:    {}",
                    env.python_version.as_deref().unwrap_or("?")
                );
                println!("runtime:   {}", env.runtime.as_deref().unwrap_or("?"));
                println!("healthy:   {}", env.healthy);
                if let Some(problem) = &env.problem {
                    println!("problem:   {problem}");
                }
                println!("created:   {}", env.created.as_deref().unwrap_or("?"));
                println!("size:      {:.1} MiB", status.size_bytes as f64 / 1048576.0);
                println!("backends:  {}", status.backends.len());
                for b in &status.backends {
                    let pid = b.pid.map(|p| p.to_string()).unwrap_or_default();
                    let transport = b.transport.as_deref().unwrap_or("?");
                    println!("  {} {transport} {} pid {pid}", b.id, b.state);
                }
                println!("pyvenv.cfg:");
                for (k, v) in &status.pyvenv_cfg {
                    println!("  {k} = {v}");
                }
                println!("packages ({}):", status.installed.len());
                for p in &status.installed {
                    println!("  {} {}", p.name, p.version);
                }
            }
        }
        VenvCommand::Delete { name, yes, force } => {
            let envs = environments()?;
            let dir = envs.dir(&name);
            if std::fs::symlink_metadata(&dir).is_err() {
                anyhow::bail!("Environment `{name}` does not exist; see `beep-host venv list`");
            }
            if !yes
                && !confirm(&format!(
                    "Delete environment `{name}` at {}?",
                    dir.display()
                ))?
            {
                eprintln!("Not deleted.");
                return Ok(ExitCode::FAILURE);
            }
            let running = DaemonBackends::ask(envs.paths()).await?;
            envs.delete(&name, DeleteOptions { force }, &running, &StderrReporter)
                .await?;
            println!("Deleted environment `{name}`");
        }
        VenvCommand::Admin { json } => {
            let outcome = environments()?.admin(&StderrReporter).await?;
            if json {
                print_json(&outcome)?;
            } else {
                let what = match &outcome.action {
                    AdminAction::Created => "created".to_string(),
                    AdminAction::Recreated => "was broken; recreated".to_string(),
                    AdminAction::Repaired { installed } => {
                        format!("repaired (installed {})", installed.join(", "))
                    }
                    AdminAction::Unchanged => "is up to date".to_string(),
                };
                println!(
                    "Admin environment {what}: {}",
                    outcome.environment.path.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask on the terminal; without one, refuse (the caller must pass --yes).
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "Refusing to delete without confirmation: stdin is not a terminal; pass --yes"
        );
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
