//! `init`, `runtime ...` and `config`.

use clap::{Args, Subcommand};
use std::process::ExitCode;

use beep_host::runtime::Runtimes;
use beep_host::{Config, Paths};

use super::output::{print_json, print_table};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Version to install, e.g. 3.12 or 3.12.7.
    #[arg(long)]
    version: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// List installed and adopted runtimes, or the catalog with --available.
    List {
        #[arg(long)]
        available: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make a runtime the default (a key, a version or an interpreter path).
    Default { key: String },
}

pub fn runtimes() -> anyhow::Result<Runtimes> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    Ok(Runtimes::new(paths, config))
}

pub async fn init(_args: InitArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

pub async fn config(_args: ConfigArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

pub async fn run(cmd: RuntimeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RuntimeCommand::List { json, .. } => {
            let list = runtimes()?.list()?;
            if json {
                print_json(&list)?;
            } else {
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
        }
        RuntimeCommand::Default { key } => {
            let r = runtimes()?.set_default(&key)?;
            println!("default runtime: {} ({})", r.key, r.python.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
