//! `bundle`, `bundle inspect` and `up --bundle`: offline bundles.

use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use beep_host::bundle::{self, BundleOptions, BundlePlatform};
use beep_host::runtime::Runtimes;
use beep_host::{Config, Paths, Reporter};

use super::output::{print_json, print_table};
use super::progress::BarReporter;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BundleArgs {
    #[command(subcommand)]
    command: Option<BundleCommand>,
    /// The project folder (with beep.toml and beep.lock).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The zip to write.
    #[arg(short, long, required = true)]
    output: Option<PathBuf>,
    /// A platform to carry (repeatable): linux-x86_64-gnu, windows-x86_64 or macos-aarch64; default: this one.
    #[arg(long = "platform")]
    platforms: Vec<BundlePlatform>,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// List a bundle's members, their sizes and whether each verifies.
    Inspect {
        /// The bundle.
        file: PathBuf,
        /// Print the inspection as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn bundle(args: BundleArgs) -> anyhow::Result<ExitCode> {
    if let Some(BundleCommand::Inspect { file, json }) = args.command {
        return inspect(file, json);
    }
    let output = args.output.unwrap_or_default();
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    let runtimes = Runtimes::new(paths.clone(), config);
    let catalog = runtimes.catalog().await?;
    let options = BundleOptions {
        dir: args.dir,
        output,
        platforms: args.platforms,
    };
    let reporter = BarReporter::new(!args.json);
    let result = bundle::write::bundle(&paths, &catalog, &options, &reporter).await;
    reporter.finish();
    let written = result?;
    if args.json {
        print_json(&written.manifest)?;
    } else {
        let platforms: Vec<&str> = written
            .manifest
            .platforms
            .iter()
            .map(|p| p.platform.tag())
            .collect();
        println!(
            "Wrote {} ({} members, {} bytes) for {}",
            written.path.display(),
            written.manifest.members.len() + 1,
            written.size,
            platforms.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let inspection = bundle::read::inspect(&file)?;
    let code = if inspection.verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        print_json(&inspection)?;
        return Ok(code);
    }
    if let Some(manifest) = &inspection.manifest {
        for contents in &manifest.platforms {
            println!(
                "{}: runtime {}, {} wheels{}",
                contents.platform,
                contents.runtime.key(),
                contents.wheels.len(),
                contents
                    .uv
                    .as_deref()
                    .map(|uv| format!(", uv from {}", uv.trim_start_matches("tools/")))
                    .unwrap_or_default()
            );
        }
    }
    let rows: Vec<Vec<String>> = inspection
        .members
        .iter()
        .map(|m| {
            vec![
                m.path.clone(),
                m.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                match &m.problem {
                    None => "ok".into(),
                    Some(p) => p.clone(),
                },
            ]
        })
        .collect();
    print_table(&["MEMBER", "SIZE", "VERIFIED"], &rows);
    if inspection.verified() {
        println!("Bundle verifies.");
    } else {
        for problem in &inspection.problems {
            eprintln!("error: {problem}");
        }
    }
    Ok(code)
}

/// `up --bundle FILE [DIR]`: verify and stage the bundle before the home is looked at
/// (a bad bundle writes nothing there), then the project's `up` from it.
pub async fn up(
    bundle: &Path,
    dir: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<beep_host::project::UpReport> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    Ok(bundle::offline::up_from_file(&paths, &config, bundle, dir, reporter).await?)
}
