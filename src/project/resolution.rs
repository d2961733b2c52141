//! `lock`: the runtime a project pins and the packages uv resolves for it.

use std::ffi::OsStr;
use std::path::Path;

use super::Error;
use super::converge::Projects;
use super::lockfile::{self, BeepTool, LOCK_FILE, ProjectLock, RuntimePin};
use super::manifest::{Manifest, PythonRequest, Requirements};
use crate::runtime::{Catalog, InstallRequest, Runtime, RuntimeKind};
use crate::venv::{Tool, installer};
use crate::{Progress, Reporter};

impl Projects {
    /// `beep-host lock`: resolve `<dir>/beep.toml` into `<dir>/beep.lock`. The file is
    /// rewritten only when its bytes change.
    #[tracing::instrument(skip_all, fields(dir = %dir.display()))]
    pub async fn lock(&self, dir: &Path, reporter: &dyn Reporter) -> Result<ProjectLock, Error> {
        let manifest = Manifest::load(dir)?;
        let pin = self.pin(&manifest, None).await?;
        // The declared runtime's interpreter, when it is here, gives the exact markers.
        let runtime = self.runtimes().find(&pin.request()).ok();
        Ok(self
            .lock_manifest(&manifest, pin, runtime.as_ref(), reporter)
            .await?
            .0)
    }

    /// The runtime a lock pins: the catalog entry for a version or key (the catalog's own
    /// URL, not a mirror's), else a runtime on the machine.
    pub(super) async fn pin(
        &self,
        manifest: &Manifest,
        runtime: Option<&Runtime>,
    ) -> Result<RuntimePin, Error> {
        let request = manifest.python.as_request();
        let wrap = |source| Error::Runtime {
            dir: manifest.dir.clone(),
            request: request.clone(),
            source: Box::new(source),
        };
        if !matches!(manifest.python, PythonRequest::Path(_)) {
            let catalog = Catalog::load(self.config.catalog.as_deref(), None)
                .await
                .map_err(|e| wrap(e.into()))?;
            let parsed = InstallRequest::parse(&request).map_err(wrap)?;
            let platform = crate::runtime::platform::Platform::current();
            if let Some(entry) = catalog.resolve(&parsed, &platform) {
                return Ok(RuntimePin::Managed {
                    key: entry.key(),
                    version: entry.version.clone(),
                    url: entry.url.clone(),
                    sha256: entry.sha256.clone(),
                });
            }
        }
        let runtime = match runtime {
            Some(r) => r.clone(),
            None => self.runtimes().find(&request).map_err(wrap)?,
        };
        Ok(match runtime.kind {
            RuntimeKind::Managed => {
                let catalog = Catalog::load(self.config.catalog.as_deref(), None)
                    .await
                    .map_err(|e| wrap(e.into()))?;
                match catalog.entries.iter().find(|e| e.key() == runtime.key) {
                    Some(entry) => RuntimePin::Managed {
                        key: entry.key(),
                        version: entry.version.clone(),
                        url: entry.url.clone(),
                        sha256: entry.sha256.clone(),
                    },
                    None => RuntimePin::Adopted {
                        path: runtime.python,
                        version: runtime.version,
                    },
                }
            }
            RuntimeKind::Adopted => RuntimePin::Adopted {
                path: runtime.python,
                version: runtime.version,
            },
        })
    }

    /// Resolve with uv and write `beep.lock` when its bytes change; `true` when written.
    pub(super) async fn lock_manifest(
        &self,
        manifest: &Manifest,
        pin: RuntimePin,
        runtime: Option<&Runtime>,
        reporter: &dyn Reporter,
    ) -> Result<(ProjectLock, bool), Error> {
        reporter.report(Progress::Resolve {
            what: format!("{} ({})", LOCK_FILE, manifest.dir.display()),
        });
        let input = lockfile::input_hash(manifest)?;
        let tool = self.tool(manifest, runtime, reporter).await?;
        let tmp = tempfile::tempdir().map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
        let requirements = match &manifest.requirements {
            Requirements::File(path) => path.clone(),
            Requirements::List(list) => {
                let path = tmp.path().join("requirements.in");
                let mut text = list.join("\n");
                text.push('\n');
                fs_err::write(&path, text).map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
                path
            }
        };
        let out = tmp.path().join("pylock.toml");
        let version = pin.version().to_string();
        let mut args: Vec<&OsStr> = [
            "pip",
            "compile",
            "--no-config",
            "--quiet",
            "--no-header",
            "--format",
            "pylock.toml",
            "-o",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        args.push(out.as_os_str());
        args.push(requirements.as_os_str());
        match runtime {
            Some(runtime) => {
                args.push(OsStr::new("--python"));
                args.push(runtime.python.as_os_str());
            }
            None => {
                args.push(OsStr::new("--python-version"));
                args.push(OsStr::new(&version));
            }
        }
        run_uv(&tool, &args, reporter, &manifest.dir)
            .await
            .map_err(|source| Error::Resolve {
                dir: manifest.dir.clone(),
                source,
            })?;
        let pylock = fs_err::read_to_string(&out).map_err(|source| {
            Error::LockFile(lockfile::Error::Read {
                path: out.clone(),
                source,
            })
        })?;
        let text = lockfile::compose(
            &pylock,
            &BeepTool {
                input,
                runtime: pin,
            },
        );
        let path = manifest.dir.join(LOCK_FILE);
        let written = fs_err::read(&path).ok().as_deref() != Some(text.as_bytes());
        if written {
            let staging = manifest.dir.join(format!(".{LOCK_FILE}.tmp"));
            fs_err::write(&staging, &text)
                .and_then(|()| fs_err::rename(&staging, &path))
                .map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok((ProjectLock::parse(path, text.as_bytes())?, written))
    }

    pub(super) async fn tool(
        &self,
        manifest: &Manifest,
        runtime: Option<&Runtime>,
        reporter: &dyn Reporter,
    ) -> Result<Tool, Error> {
        let runtimes = self.runtimes();
        let fallback = runtime.map(|r| r.python.clone());
        let provision = move || match runtimes.default_runtime() {
            Ok(runtime) => Ok(runtime.python),
            Err(e) => fallback.ok_or(e),
        };
        let tool = installer::select(&self.paths, self.config.installer, provision, reporter)
            .await
            .map_err(|source| Error::Resolve {
                dir: manifest.dir.clone(),
                source,
            })?;
        match tool {
            Tool::Pip => Err(Error::NeedsUv {
                dir: manifest.dir.clone(),
            }),
            uv => Ok(uv),
        }
    }

    /// The pinned runtime, installed from the catalog when it is missing; `true` when
    /// it was installed now.
    pub(super) async fn ensure_runtime(
        &self,
        manifest: &Manifest,
        pin: &RuntimePin,
        reporter: &dyn Reporter,
    ) -> Result<(Runtime, bool), Error> {
        let request = pin.request();
        let wrap = |source| Error::Runtime {
            dir: manifest.dir.clone(),
            request: request.clone(),
            source: Box::new(source),
        };
        if let RuntimePin::Managed { key, .. } = pin {
            match crate::runtime::install::read_managed_key(&self.paths, key) {
                Some(runtime) if runtime.problem.is_none() => return Ok((runtime, false)),
                _ => {
                    let installed = self
                        .runtimes()
                        .install(key, reporter, &Default::default())
                        .await
                        .map_err(wrap)?;
                    return Ok((installed.runtime, !installed.already_installed));
                }
            }
        }
        Ok((self.runtimes().find(&request).map_err(wrap)?, false))
    }
}

/// Run uv in the project folder (so relative paths in requirements resolve there).
pub(super) async fn run_uv(
    tool: &Tool,
    args: &[&OsStr],
    reporter: &dyn Reporter,
    _dir: &Path,
) -> Result<(), installer::Error> {
    tool.run_uv(args, reporter)
        .await
        .expect("the tool was checked to be uv")
}
