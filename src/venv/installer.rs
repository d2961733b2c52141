//! The tools that create environments and install packages: uv when it can be found or
//! provisioned, else `python -m venv` and the environment's pip.
//!
//! uv keeps its cache under the host's cache dir (`<cache>/uv`, passed as `UV_CACHE_DIR`
//! unless the caller's environment sets `UV_CACHE_DIR` itself), not in `~/.cache/uv`.
//!
//! uv is looked up in `BEEP_HOST_UV`, then in `<data>/tools/uv` (provisioned once with
//! `pip install --target` from the default runtime), then on PATH. Every line the tool
//! prints is reported as [`Progress::Output`]; a non-zero exit becomes
//! [`Error::Failed`], whose message is one summary line (the lines themselves were
//! reported already) and which carries the tool's last lines in [`Failure::output`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::package::PackageRequest;
use crate::config::Installer;
use crate::{Paths, Progress, Reporter};

mod uv;
use uv::provision_uv;
pub use uv::{ensure_uv_from_wheel, find_uv, provisioned_uv};

/// Names a uv binary to use instead of looking for one (tests share one this way).
pub const UV_ENV: &str = "BEEP_HOST_UV";

/// How many of the tool's last output lines an error keeps.
const ERROR_LINES: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to start `{}`", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` failed ({}): {}", failure.command, failure.status, failure.summary)]
    Failed { failure: Box<Failure> },
    #[error("`{UV_ENV}` names `{}`, which is not an executable file", path.display())]
    UvEnv { path: PathBuf },
    #[error("Failed to provision uv into `{}`", path.display())]
    Provision {
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },
    #[error("Failed to provision uv: no interpreter to run pip with")]
    ProvisionRuntime {
        #[source]
        source: Box<crate::runtime::Error>,
    },
    #[error("Failed to provision uv: `{}` is missing after `pip install uv`", path.display())]
    ProvisionedMissing { path: PathBuf },
    #[error("Failed to provision uv from `{}`: {problem}", wheel.display())]
    UvWheel { wheel: PathBuf, problem: String },
    #[error("Failed to prepare `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Layout(Box<super::layout::Error>),
    #[error("Failed to lock `{}`", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: Box<crate::lock::Error>,
    },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::UvEnv { .. } => C::Invalid,
            Self::Io { .. } | Self::Layout(_) => C::Internal,
            Self::Lock { source, .. } => source.code(),
            _ => C::Failed,
        }
    }
}

/// A tool that ran and exited unsuccessfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A short form of the command, e.g. `uv pip install`.
    pub command: String,
    /// The exit status as the OS describes it.
    pub status: String,
    /// The tool's last lines of error output (or of its output when it wrote no errors).
    pub output: String,
    /// One line that says what went wrong (the tool's last error line), for the message:
    /// the whole output was reported line by line as the tool ran.
    pub summary: String,
}

/// How long a summary line may be.
const SUMMARY_CHARS: usize = 240;

/// The line of `tail` that says what failed: the last one that reads as an error, else
/// the last non-empty one.
fn summarize(tail: &VecDeque<String>) -> String {
    let lines = || tail.iter().map(|l| l.trim()).filter(|l| !l.is_empty());
    // pip: `ERROR: ...`; uv: `error: <what failed>` then `cause: <why>` (on a terminal
    // `× <what>` then `╰─▶ <why>`): the last of these says the most.
    let is_error = |l: &&str| {
        let lower = l.to_ascii_lowercase();
        lower.starts_with("error")
            || lower.starts_with("cause:")
            || l.starts_with(['×', '╰'])
            || lower.contains("error:")
    };
    let line = lines()
        .rfind(is_error)
        .or_else(|| lines().next_back())
        .unwrap_or("it printed nothing");
    let line = line.trim_start_matches(['×', '╰', '─', '▶', ' ']);
    let line = line.strip_prefix("cause: ").unwrap_or(line);
    if line.chars().count() > SUMMARY_CHARS {
        let cut: String = line.chars().take(SUMMARY_CHARS).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// The tool in force for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// `uv venv`, `uv pip install --python <env python>`, with its cache in `cache`.
    Uv { uv: PathBuf, cache: PathBuf },
    /// `python -m venv`, `<env python> -m pip`.
    Pip,
}

impl Tool {
    /// `uv` or `pip`, as recorded in `beep-env.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Tool::Uv { .. } => "uv",
            Tool::Pip => "pip",
        }
    }

    /// Create a virtual environment at `dir` from the base interpreter `python`.
    pub async fn create_venv(
        &self,
        python: &Path,
        dir: &Path,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        let mut cmd = match self {
            Tool::Uv { uv, cache } => {
                let mut cmd = uv_command(uv, cache);
                cmd.args(["venv", "--no-config", "--quiet", "--python"])
                    .arg(python)
                    .arg(dir);
                cmd
            }
            Tool::Pip => {
                let mut cmd = command(python);
                cmd.args(["-m", "venv"]).arg(dir);
                cmd
            }
        };
        run(&mut cmd, reporter).await
    }

    /// Install `request` into the environment whose interpreter is `env_python`.
    pub async fn install(
        &self,
        env_python: &Path,
        request: &PackageRequest,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        let mut cmd = self.pip_command(env_python, "install");
        for file in &request.files {
            cmd.arg("-r").arg(file);
        }
        cmd.args(&request.requirements);
        run(&mut cmd, reporter).await
    }

    /// Uninstall the distributions `names` from the environment.
    pub async fn uninstall(
        &self,
        env_python: &Path,
        names: &[String],
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        let mut cmd = self.pip_command(env_python, "uninstall");
        if matches!(self, Tool::Pip) {
            cmd.arg("--yes");
        }
        cmd.args(names);
        run(&mut cmd, reporter).await
    }

    /// Run `uv <args>` with the same cache and clean environment as every install
    /// (projects lock and sync through this); `None` when the tool is pip.
    pub async fn run_uv(
        &self,
        args: &[&std::ffi::OsStr],
        reporter: &dyn Reporter,
    ) -> Option<Result<(), Error>> {
        let Tool::Uv { uv, cache } = self else {
            return None;
        };
        let mut cmd = uv_command(uv, cache);
        cmd.args(args);
        Some(run(&mut cmd, reporter).await)
    }

    /// Put pip into an environment that has none (one created by uv).
    pub async fn bootstrap_pip(
        &self,
        env_python: &Path,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        let mut cmd = command(env_python);
        cmd.args(["-m", "ensurepip", "--default-pip"]);
        run(&mut cmd, reporter).await
    }

    fn pip_command(&self, env_python: &Path, verb: &str) -> Command {
        match self {
            Tool::Uv { uv, cache } => {
                let mut cmd = uv_command(uv, cache);
                cmd.args(["pip", verb, "--python"]).arg(env_python);
                cmd
            }
            Tool::Pip => {
                let mut cmd = command(env_python);
                cmd.args(["-m", "pip", verb]);
                cmd
            }
        }
    }
}

/// Choose the tool for `installer`: uv if found (or provisioned), pip otherwise.
///
/// `provision_python` names the interpreter that runs `pip install uv` when uv has to
/// be provisioned (the default runtime, or the one at hand when none is set).
pub async fn select(
    paths: &Paths,
    installer: Installer,
    provision_python: impl FnOnce() -> Result<PathBuf, crate::runtime::Error>,
    reporter: &dyn Reporter,
) -> Result<Tool, Error> {
    if installer == Installer::Pip {
        return Ok(Tool::Pip);
    }
    let cache = paths.uv_cache();
    if let Some(uv) = find_uv(paths)? {
        return Ok(Tool::Uv { uv, cache });
    }
    match provision_uv(paths, provision_python, reporter).await {
        Ok(uv) => Ok(Tool::Uv { uv, cache }),
        Err(e) if installer == Installer::Auto => {
            tracing::debug!("uv is not available, using pip: {e}");
            reporter.report(Progress::Output {
                line: format!("uv is not available ({e}); using pip"),
            });
            Ok(Tool::Pip)
        }
        Err(e) => Err(e),
    }
}

/// A command with a clean environment for installers: no inherited virtualenv or
/// Python path, no prompts, no version nags, no interpreter downloads.
fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env_remove("VIRTUAL_ENV")
        .env_remove("CONDA_PREFIX")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .env("PYTHONUNBUFFERED", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_PROGRESS", "1");
    cmd
}

/// [`command`] for uv, with its cache under the host's cache dir unless the caller's
/// environment names one.
fn uv_command(uv: &Path, cache: &Path) -> Command {
    let mut cmd = command(uv);
    if std::env::var_os("UV_CACHE_DIR").is_none_or(|v| v.is_empty()) {
        cmd.env("UV_CACHE_DIR", cache);
    }
    cmd
}

/// A short form of a command for messages: `uv pip install`, `python3.11 -m venv`.
fn describe(cmd: &Command) -> String {
    let std = cmd.as_std();
    let program = Path::new(std.get_program())
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let args = std
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| !a.starts_with("--") && !a.contains(std::path::MAIN_SEPARATOR))
        .take(3);
    std::iter::once(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run `cmd`, reporting every output line; fail with the tool's last lines.
async fn run(cmd: &mut Command, reporter: &dyn Reporter) -> Result<(), Error> {
    let command = describe(cmd);
    tracing::debug!(?cmd, "running installer");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        program: PathBuf::from(cmd.as_std().get_program()),
        source,
    })?;
    // One reader task per stream; lines come back here, where the reporter lives.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out, false, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err, true, tx.clone()));
    }
    drop(tx);
    let mut out_tail = VecDeque::new();
    let mut err_tail = VecDeque::new();
    while let Some((is_err, line)) = rx.recv().await {
        let tail = if is_err { &mut err_tail } else { &mut out_tail };
        if tail.len() == ERROR_LINES {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        reporter.report(Progress::Output { line });
    }
    let status = child.wait().await.map_err(|source| Error::Spawn {
        program: PathBuf::from(cmd.as_std().get_program()),
        source,
    })?;
    if status.success() {
        return Ok(());
    }
    let tail = if err_tail.is_empty() {
        out_tail
    } else {
        err_tail
    };
    Err(Error::Failed {
        failure: Box::new(Failure {
            command,
            status: status.to_string(),
            summary: summarize(&tail),
            output: Vec::from(tail).join("\n"),
        }),
    })
}

async fn forward_lines(
    stream: impl tokio::io::AsyncRead + Unpin,
    is_err: bool,
    tx: tokio::sync::mpsc::UnboundedSender<(bool, String)>,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if tx.send((is_err, line)).is_err() {
                    return;
                }
            }
        }
    }
}
