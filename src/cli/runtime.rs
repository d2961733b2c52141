//! `init`, `runtime ...` and `config`.

use clap::{Args, Subcommand};
use serde::Serialize;
use std::process::ExitCode;

use beep_host::check::{self, Status};
use beep_host::runtime::platform::Platform;
use beep_host::runtime::{InstallOptions, Runtime, Runtimes};
use beep_host::{Config, Paths};

use super::output::{print_json, print_table};
use super::progress::BarReporter;

/// The version `init` installs when neither the flag nor the config names one.
const INIT_VERSION: &str = "3.12";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Version to install, e.g. 3.12 or 3.12.7 (default: the config's, else 3.12).
    #[arg(long)]
    version: Option<String>,
    /// Print the result as JSON (no progress bar).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the checks as a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// List installed and adopted runtimes, or the catalog for this platform with --available.
    List {
        /// List the catalog for this platform instead, marking what is installed.
        #[arg(long)]
        available: bool,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a runtime: a version (3.12, 3.12.7) or a catalog key.
    Install {
        /// A version (3.12, 3.12.7) or a catalog key (cpython-3.12.7-linux-x86_64-gnu).
        request: String,
        /// Print the result as JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
    /// Remove a managed runtime (adopted ones are never deleted).
    Remove {
        /// The runtime's key, as `beep-host runtime list` shows it.
        key: String,
    },
    /// Make a runtime the default: a key, a version or an interpreter path.
    Default {
        /// A runtime key, a version (3.12) or the path of a Python interpreter.
        key: String,
    },
}

fn runtimes() -> anyhow::Result<Runtimes> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    Ok(Runtimes::new(paths, config))
}

/// Install with a bar on a terminal; Ctrl+C cancels and cleans up.
async fn install(
    runtimes: &Runtimes,
    request: &str,
    bar: bool,
) -> anyhow::Result<beep_host::runtime::install::Installed> {
    let reporter = BarReporter::new(bar);
    let options = InstallOptions::default();
    let cancel = options.cancel.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    let result = runtimes.install(request, &reporter, &options).await;
    watcher.abort();
    reporter.finish();
    Ok(result?)
}

pub async fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let mut runtimes = runtimes()?;
    let version = args
        .version
        .or_else(|| runtimes.config().default_version.clone())
        .unwrap_or_else(|| INIT_VERSION.to_string());
    let installed = install(&runtimes, &version, !args.json).await?;
    let runtime = runtimes.set_default(&installed.runtime.key)?;
    if args.json {
        print_json(&runtime)?;
    } else {
        let verb = if installed.already_installed {
            "Already installed"
        } else {
            "Installed"
        };
        println!("{verb} {} at {}", runtime.key, runtime.path.display());
        println!("Default runtime: {}", runtime.key);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Available<'a> {
    key: String,
    version: &'a str,
    build: &'a str,
    os: &'a str,
    arch: &'a str,
    libc: &'a str,
    url: &'a str,
    sha256: &'a str,
    installed: bool,
}

pub async fn run(cmd: RuntimeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RuntimeCommand::List {
            available: false,
            json,
        } => {
            let list = runtimes()?.list()?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                eprintln!(
                    "No runtimes. Install one with `beep-host init` or `beep-host runtime install 3.12`."
                );
            } else {
                print_runtimes(&list);
            }
        }
        RuntimeCommand::List {
            available: true,
            json,
        } => {
            let runtimes = runtimes()?;
            let catalog = runtimes.catalog().await?;
            let installed: Vec<String> = runtimes.list()?.into_iter().map(|r| r.key).collect();
            let entries: Vec<Available> = catalog
                .for_platform(&Platform::current())
                .into_iter()
                .map(|e| Available {
                    key: e.key(),
                    version: &e.version,
                    build: &e.build,
                    os: &e.os,
                    arch: &e.arch,
                    libc: &e.libc,
                    url: &e.url,
                    sha256: &e.sha256,
                    installed: installed.contains(&e.key()),
                })
                .collect();
            if json {
                print_json(&entries)?;
            } else {
                let rows = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.key.clone(),
                            e.version.to_string(),
                            e.build.to_string(),
                            if e.installed {
                                "installed".into()
                            } else {
                                String::new()
                            },
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(&["KEY", "VERSION", "BUILD", ""], &rows);
            }
        }
        RuntimeCommand::Install { request, json } => {
            let runtimes = runtimes()?;
            let installed = install(&runtimes, &request, !json).await?;
            if json {
                print_json(&installed)?;
            } else if installed.already_installed {
                println!(
                    "{} is already installed at {}",
                    installed.runtime.key,
                    installed.runtime.path.display()
                );
            } else {
                println!(
                    "Installed {} at {}",
                    installed.runtime.key,
                    installed.runtime.path.display()
                );
            }
        }
        RuntimeCommand::Remove { key } => {
            let mut runtimes = runtimes()?;
            let removed = runtimes.remove(&key)?;
            println!("Removed {} ({})", removed.key, removed.path.display());
            if removed.default {
                runtimes.clear_default()?;
                eprintln!(
                    "It was the default runtime; set another with `beep-host runtime default <key>`."
                );
            }
        }
        RuntimeCommand::Default { key } => {
            let r = runtimes()?.set_default(&key)?;
            println!("Default runtime: {} ({})", r.key, r.python.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_runtimes(list: &[Runtime]) {
    let rows = list
        .iter()
        .map(|r| {
            vec![
                if r.default { "*".into() } else { String::new() },
                r.key.clone(),
                r.version.clone(),
                format!("{:?}", r.kind).to_lowercase(),
                r.python.display().to_string(),
            ]
        })
        .collect::<Vec<_>>();
    print_table(&["", "KEY", "VERSION", "KIND", "PYTHON"], &rows);
}

pub async fn config(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let checks = check::run(&paths).await;
    if args.json {
        print_json(&checks)?;
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{mark}  {:<16} {}", c.name, c.message);
        }
    }
    Ok(if checks.iter().any(|c| c.status == Status::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
