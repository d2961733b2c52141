//! The configuration check (`beep-host config`): each item ok, warn or fail, with a reason.

use serde::Serialize;
use std::path::Path;

use crate::runtime::{self, Runtimes, platform::Platform};
use crate::{Config, Paths};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the configuration check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
}

impl Check {
    fn new(name: &str, status: Status, message: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            status,
            message: message.into(),
        }
    }
}

/// Run every check. Never fails itself: problems are reported as `fail` items.
pub async fn run(paths: &Paths) -> Vec<Check> {
    let mut checks = Vec::new();
    for (name, dir) in [
        ("data dir", &paths.data),
        ("config dir", &paths.config),
        ("cache dir", &paths.cache),
        ("state dir", &paths.state),
    ] {
        checks.push(match writable(dir) {
            Ok(()) => Check::new(name, Status::Ok, format!("{} is writable", dir.display())),
            Err(e) => Check::new(
                name,
                Status::Fail,
                format!("{} is not writable: {e}", dir.display()),
            ),
        });
    }
    // A bad setting is reported and the rest is still checked, with its default.
    let inspection = Config::inspect(paths);
    let file = paths.config_file();
    if inspection.problems.is_empty() {
        checks.push(Check::new(
            "config file",
            Status::Ok,
            if inspection.file_exists {
                format!("{} read", file.display())
            } else {
                format!("no file at {}: using the defaults", file.display())
            },
        ));
    }
    for problem in &inspection.problems {
        let name = match problem.setting.as_str() {
            "config file" => "config file".to_string(),
            setting => format!("setting {setting}"),
        };
        checks.push(Check::new(&name, Status::Fail, problem.message.clone()));
    }
    let config = inspection.config;
    let runtimes = Runtimes::new(paths.clone(), config.clone());
    checks.push(default_runtime(&runtimes));
    checks.push(match runtimes.catalog().await {
        Ok(catalog) => {
            let n = catalog.for_platform(&Platform::current()).len();
            let status = if n == 0 { Status::Warn } else { Status::Ok };
            Check::new(
                "catalog",
                status,
                format!(
                    "{} readable: {n} entries for {}",
                    catalog.source,
                    Platform::current()
                ),
            )
        }
        Err(e) => Check::new("catalog", Status::Fail, crate::error::chain(&e)),
    });
    checks.push(match &config.mirror {
        Some(mirror) => Check::new("mirror", Status::Ok, format!("downloads from {mirror}")),
        None => Check::new(
            "mirror",
            Status::Ok,
            format!(
                "not set: downloads from {}",
                runtime::catalog::GITHUB_PREFIX
            ),
        ),
    });
    checks
}

fn default_runtime(runtimes: &Runtimes) -> Check {
    const NAME: &str = "default runtime";
    let runtime = match runtimes.default_runtime() {
        Ok(r) => r,
        Err(runtime::Error::NoDefault) => {
            return Check::new(
                NAME,
                Status::Warn,
                "not set: run `beep-host init` or `beep-host runtime default <key>`",
            );
        }
        Err(e) => return Check::new(NAME, Status::Fail, crate::error::chain(&e)),
    };
    match runtime::discover::run_probe(&runtime.python) {
        Ok(probe) if probe.version == runtime.version => Check::new(
            NAME,
            if runtime.backend_warning().is_some() {
                Status::Warn
            } else {
                Status::Ok
            },
            match runtime.backend_warning() {
                Some(warning) => {
                    format!("{} ({}): {warning}", runtime.key, runtime.python.display())
                }
                None => format!(
                    "{} answers Python {} ({})",
                    runtime.key,
                    probe.version,
                    runtime.python.display()
                ),
            },
        ),
        Ok(probe) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "{} answers Python {} but was recorded as {}",
                runtime.key, probe.version, runtime.version
            ),
        ),
        Err(message) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "{} at {} does not run: {message}",
                runtime.key,
                runtime.python.display()
            ),
        ),
    }
}

fn writable(dir: &Path) -> std::io::Result<()> {
    fs_err::create_dir_all(dir)?;
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    fs_err::write(&probe, b"ok")?;
    fs_err::remove_file(&probe)
}
