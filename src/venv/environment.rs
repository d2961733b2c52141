//! One environment on disk: `pyvenv.cfg` (written by the venv tool), `beep-env.json`
//! (written by the host, last, when creation has succeeded) and its packages.
//!
//! Reading never starts Python. A directory without `beep-env.json` is not an
//! environment yet (a create in progress or interrupted) and is never listed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::backends::EnvBackend;
use super::package::{self, Package};

/// The host's metadata file inside each environment.
pub const METADATA_FILE: &str = "beep-env.json";
/// The venv tool's configuration file inside each environment.
pub const PYVENV_CFG: &str = "pyvenv.cfg";

/// What the host records about an environment (`<env>/beep-env.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Metadata {
    /// Key of the runtime it was created from.
    pub runtime: Option<String>,
    /// That runtime's interpreter.
    pub runtime_python: Option<PathBuf>,
    /// `uv` or `pip`: the tool that created it.
    pub installer: Option<String>,
    pub provider: Option<String>,
    pub model_id: Option<String>,
    /// `admin` for the admin environment.
    pub profile: Option<String>,
    /// RFC 3339, UTC.
    pub created: Option<String>,
}

/// An environment as listed: everything here comes from a few small file reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    pub path: PathBuf,
    /// The environment's interpreter (`bin/python`, `Scripts\python.exe`).
    pub python: PathBuf,
    /// From `pyvenv.cfg` (`version` or `version_info`).
    pub python_version: Option<String>,
    /// The runtime key from `beep-env.json`.
    pub runtime: Option<String>,
    /// The base interpreter's directory, `home` in `pyvenv.cfg`.
    pub home: Option<PathBuf>,
    pub installer: Option<String>,
    pub provider: Option<String>,
    pub model_id: Option<String>,
    pub profile: Option<String>,
    /// How many `*.dist-info` directories it holds.
    pub packages: usize,
    pub created: Option<String>,
    /// The base interpreter is still present and executable, and the metadata is readable.
    pub healthy: bool,
    /// What is wrong when it is broken (which file, what), e.g. an unreadable
    /// `beep-env.json` or a missing base interpreter; `None` when healthy.
    #[serde(default)]
    pub problem: Option<String>,
}

/// An environment in detail (`venv status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    #[serde(flatten)]
    pub environment: Environment,
    /// Installed packages with versions, from dist-info METADATA.
    pub installed: Vec<Package>,
    /// Bytes of the files under the environment (links counted as links).
    pub size_bytes: u64,
    /// Every `pyvenv.cfg` setting.
    pub pyvenv_cfg: BTreeMap<String, String>,
    /// Backends running in it, as the caller's `RunningBackends` reports them.
    pub backends: Vec<EnvBackend>,
}

/// How much disk an environment takes (`Environments::sizes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSize {
    pub name: String,
    /// Bytes of the files under the environment (links counted as links).
    pub size_bytes: u64,
}

/// The interpreter inside an environment directory.
pub fn python_in(dir: &Path) -> PathBuf {
    if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python")
    }
}

/// The directory of environment `name` under the home's environments (it may not exist).
pub fn env_dir(paths: &crate::Paths, name: &super::EnvName) -> PathBuf {
    paths.envs().join(name.as_str())
}

/// Does the environment carry grpcio? Looks at the files, without starting Python.
/// `None` when it cannot tell (the environment also sees the system site-packages).
pub fn has_grpc(dir: &Path) -> Option<bool> {
    let cfg = fs_err::read_to_string(dir.join(PYVENV_CFG)).unwrap_or_default();
    let system_site = parse_pyvenv_cfg(&cfg)
        .get("include-system-site-packages")
        .is_some_and(|v| v == "true");
    let mut site_dirs = vec![dir.join("Lib").join("site-packages")];
    if let Ok(entries) = fs_err::read_dir(dir.join("lib")) {
        for entry in entries.flatten() {
            site_dirs.push(entry.path().join("site-packages"));
        }
    }
    if site_dirs
        .iter()
        .any(|site| site.join("grpc").join("__init__.py").is_file())
    {
        Some(true)
    } else if system_site {
        None
    } else {
        Some(false)
    }
}

/// Whether `dir` holds a finished environment (its metadata file is written last).
pub fn is_complete(dir: &Path) -> bool {
    dir.join(METADATA_FILE).is_file()
}

/// Parse `key = value` lines.
pub fn parse_pyvenv_cfg(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// Read a finished environment; `Ok(None)` when `dir` is not one (no metadata file).
pub fn read(name: &str, dir: &Path) -> io::Result<Option<Environment>> {
    let metadata_text = match fs_err::read(dir.join(METADATA_FILE)) {
        Ok(bytes) => bytes,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // A damaged metadata file still leaves a listable (and deletable) environment,
    // listed as broken with the reason.
    let (metadata, damaged) = match serde_json::from_slice::<Metadata>(&metadata_text) {
        Ok(metadata) => (metadata, None),
        Err(e) => (
            Metadata::default(),
            Some(format!(
                "`{}` is damaged ({}): recreate the environment",
                dir.join(METADATA_FILE).display(),
                if metadata_text.is_empty() {
                    "it is empty".to_string()
                } else {
                    format!("not the JSON the host wrote: {e}")
                }
            )),
        ),
    };
    let cfg = read_pyvenv_cfg(dir);
    let mut env = from_parts(name, dir, &metadata, &cfg);
    if let Some(problem) = damaged {
        env.healthy = false;
        env.problem = Some(problem);
    }
    Ok(Some(env))
}

/// Read `pyvenv.cfg`; missing or unreadable is empty.
pub fn read_pyvenv_cfg(dir: &Path) -> BTreeMap<String, String> {
    fs_err::read_to_string(dir.join(PYVENV_CFG))
        .map(|t| parse_pyvenv_cfg(&t))
        .unwrap_or_default()
}

fn from_parts(
    name: &str,
    dir: &Path,
    metadata: &Metadata,
    cfg: &BTreeMap<String, String>,
) -> Environment {
    let python = python_in(dir);
    let home = cfg.get("home").map(PathBuf::from);
    let problem = if !home.as_deref().is_none_or(Path::is_dir) {
        Some(format!(
            "its base interpreter's directory `{}` (`home` in `{}`) is gone",
            home.as_deref().unwrap_or(Path::new("")).display(),
            dir.join(PYVENV_CFG).display()
        ))
    } else if !is_executable(&python) {
        Some(format!(
            "`{}` is missing or not executable",
            python.display()
        ))
    } else {
        None
    };
    let healthy = problem.is_none();
    Environment {
        name: name.to_string(),
        path: dir.to_path_buf(),
        python,
        python_version: cfg
            .get("version_info")
            .or_else(|| cfg.get("version"))
            .cloned(),
        runtime: metadata.runtime.clone(),
        home,
        installer: metadata.installer.clone(),
        provider: metadata.provider.clone(),
        model_id: metadata.model_id.clone(),
        profile: metadata.profile.clone(),
        packages: package::count(dir),
        created: metadata.created.clone(),
        healthy,
        problem,
    }
}

/// Write `beep-env.json` atomically (temp file, then rename): the commit point of a create.
pub fn write_metadata(dir: &Path, metadata: &Metadata) -> io::Result<()> {
    let text = serde_json::to_vec_pretty(metadata).map_err(io::Error::other)?;
    let tmp = dir.join(format!("{METADATA_FILE}.tmp"));
    fs_err::write(&tmp, text)?;
    fs_err::rename(&tmp, dir.join(METADATA_FILE))
}

/// Whether `path` (following links) is an executable file.
pub fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Total size of the files under `dir`, not following links.
pub fn disk_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// Now as RFC 3339 in UTC, e.g. `2026-11-24T01:06:17Z`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_detection() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let site = dir.path().join("lib/python3.11/site-packages");
        fs_err::create_dir_all(&site).unwrap();
        assert_eq!(has_grpc(dir.path()), Some(false));
        fs_err::write(
            dir.path().join("pyvenv.cfg"),
            "include-system-site-packages = true\n",
        )
        .unwrap();
        assert_eq!(has_grpc(dir.path()), None);
        fs_err::create_dir_all(site.join("grpc")).unwrap();
        fs_err::write(site.join("grpc/__init__.py"), "").unwrap();
        assert_eq!(has_grpc(dir.path()), Some(true));
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_914_377), "2026-11-29T01:06:17Z");
    }

    #[test]
    fn pyvenv_cfg() {
        let cfg = parse_pyvenv_cfg(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion_info = 3.11.7\n",
        );
        assert_eq!(cfg["home"], "/usr/bin");
        assert_eq!(cfg["version_info"], "3.11.7");
    }
}
