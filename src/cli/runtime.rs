//! `init`, `runtime ...` and `config`.

use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use beep_host::check::{self, Status};
use beep_host::daemon::DaemonBackends;
use beep_host::runtime::platform::Platform;
use beep_host::runtime::{self as core, InstallOptions, Runtime, RuntimeKind, Runtimes};
use beep_host::{Config, Paths};

use super::output::{print_error, print_json, print_table};
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
    /// Remove a managed runtime (adopted ones are never deleted); refused while
    /// environments are built on it.
    Remove {
        /// The runtime's key, as `beep-host runtime list` shows it.
        key: String,
        /// Remove it although environments are built on it (they stop working).
        #[arg(long)]
        force: bool,
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
) -> Result<beep_host::runtime::install::Installed, core::Error> {
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
    result
}

pub async fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let mut runtimes = runtimes()?;
    let version = args
        .version
        .or_else(|| runtimes.config().default_version.clone())
        .unwrap_or_else(|| INIT_VERSION.to_string());
    let installed = match install(&runtimes, &version, !args.json).await {
        Ok(installed) => installed,
        Err(e) if is_unreachable(&e) => return unreachable(&mut runtimes, e),
        Err(e) => return Err(e.into()),
    };
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

/// The download (or the catalog) could not be fetched: a network failure, not a bad archive.
fn is_unreachable(e: &core::Error) -> bool {
    e.is_resumable() || matches!(e, core::Error::Catalog(core::catalog::Error::Fetch { .. }))
}

/// `init` could not reach the download host: say where a mirror is set and which
/// interpreters on the machine could be the default instead; on a terminal, offer one.
fn unreachable(runtimes: &mut Runtimes, error: core::Error) -> anyhow::Result<ExitCode> {
    print_error(&anyhow::Error::from(error));
    let paths = runtimes.paths().clone();
    let now = match &runtimes.config().mirror {
        Some(mirror) => format!("now `{mirror}`"),
        None => format!("now not set: {}", core::catalog::GITHUB_PREFIX),
    };
    eprintln!(
        "The download host could not be reached. To download from a mirror of the python-build-standalone releases, set `{}=<url>` or `mirror = \"<url>\"` in {} ({now}).",
        beep_host::config::MIRROR_ENV,
        paths.config_file().display(),
    );
    let adopted: Vec<Runtime> = runtimes
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.kind == RuntimeKind::Adopted && r.problem.is_none())
        .collect();
    if adopted.is_empty() {
        eprintln!(
            "No Python interpreter was found on this machine (PATH, pyenv, conda) to use instead."
        );
        return Ok(ExitCode::FAILURE);
    }
    eprintln!("Interpreters found on this machine, which can be the default instead:");
    for (i, r) in adopted.iter().enumerate() {
        let note = if r.backend_warning().is_some() {
            "  (too old for backends)"
        } else {
            ""
        };
        eprintln!(
            "  {}. {}  Python {}  {}{note}",
            i + 1,
            r.key,
            r.version,
            r.python.display()
        );
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        eprintln!(
            "Make one the default with: beep-host runtime default {}",
            adopted[0].python.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    eprint!(
        "Make one of them the default? [1-{}, Enter for none] ",
        adopted.len()
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let Some(chosen) = answer
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| adopted.get(i))
    else {
        eprintln!("No default set.");
        return Ok(ExitCode::FAILURE);
    };
    let runtime = runtimes.set_default(&chosen.python.to_string_lossy())?;
    println!(
        "Default runtime: {} ({})",
        runtime.key,
        runtime.python.display()
    );
    warn_backends(&runtime);
    Ok(ExitCode::SUCCESS)
}

/// Say what will not work with an old interpreter.
fn warn_backends(runtime: &Runtime) {
    if let Some(warning) = runtime.backend_warning() {
        eprintln!("warning: {warning}");
    }
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
                for r in &list {
                    if let Some(problem) = &r.problem {
                        eprintln!(
                            "{} is broken: {problem}; remove it with `beep-host runtime remove {}`",
                            r.key, r.key
                        );
                    }
                }
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
        RuntimeCommand::Remove { key, force } => {
            let mut runtimes = runtimes()?;
            let running = DaemonBackends::ask(runtimes.paths()).await?;
            let core::Removed {
                runtime: removed,
                broken,
            } = beep_host::venv::Environments::new(
                runtimes.paths().clone(),
                runtimes.config().clone(),
            )
            .remove_runtime(&key, force, &running)?;
            println!("Removed {} ({})", removed.key, removed.path.display());
            if !broken.environments.is_empty() {
                eprintln!(
                    "warning: these environments were built on it and no longer work (recreate them): {}",
                    broken.environments.join(", ")
                );
            }
            if !broken.runtime_backends.is_empty() {
                eprintln!(
                    "warning: these backends still run on it and fail on their next import (stop them): {}",
                    broken.runtime_backends.join(", ")
                );
            }
            if !broken.backends.is_empty() {
                eprintln!(
                    "warning: these backends still run from it and fail on their next import (restart them after recreating their environments): {}",
                    broken.backends.join(", ")
                );
            }
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
            warn_backends(&r);
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
                if r.problem.is_some() {
                    "BROKEN".into()
                } else {
                    r.version.clone()
                },
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
