//! `pkg install|remove|list`.

use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

use beep_host::venv::{EnvName, PackageRequest};

use super::output::{print_json, print_table};
use super::venv::{StderrReporter, environments};

#[derive(Debug, Subcommand)]
pub enum PkgCommand {
    /// Install packages into an environment (uv when available, else pip).
    Install {
        /// The environment to install into.
        env: EnvName,
        /// Requirements, e.g. `six` or `idna>=3`.
        requirements: Vec<String>,
        /// A requirements file (repeatable).
        #[arg(short = 'r', long = "requirements")]
        files: Vec<PathBuf>,
    },
    /// Remove packages from an environment.
    Remove {
        /// The environment to remove from.
        env: EnvName,
        /// Names of the packages to remove.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List the packages of an environment.
    List {
        /// The environment whose packages to list.
        env: EnvName,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: PkgCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PkgCommand::Install {
            env,
            requirements,
            files,
        } => {
            if requirements.is_empty() && files.is_empty() {
                anyhow::bail!("Nothing to install: give requirements or -r <file>");
            }
            let request = PackageRequest::new(requirements, files);
            environments()?
                .install(&env, &request, &StderrReporter)
                .await?;
            eprintln!("Installed {} into `{env}`", request.describe());
        }
        PkgCommand::Remove { env, names } => {
            environments()?
                .uninstall(&env, &names, &StderrReporter)
                .await?;
            eprintln!("Removed {} from `{env}`", names.join(" "));
        }
        PkgCommand::List { env, json } => {
            let packages = environments()?.packages(&env)?;
            if json {
                print_json(&packages)?;
            } else {
                let rows = packages
                    .iter()
                    .map(|p| vec![p.name.clone(), p.version.clone()])
                    .collect::<Vec<_>>();
                print_table(&["NAME", "VERSION"], &rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
