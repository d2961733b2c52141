//! Where a backend runs (an environment or a runtime itself): finding a runtime to run on,
//! and the lock a start holds on its place.

use super::Error;
use super::spec::{BackendSpec, Place, RuntimeRef};
use crate::Paths;
use crate::lock::LockFile;

/// The lock of the environment or runtime the backend runs at, waiting at most the ready
/// timeout for another operation.
pub(super) async fn lock(paths: &Paths, spec: &BackendSpec) -> Result<LockFile, Error> {
    let wait = crate::lock::Wait {
        timeout: Some(spec.ready_timeout),
        ..Default::default()
    };
    match &spec.place {
        Place::Environment(env) => {
            let path = crate::venv::lock_path(paths, env.as_str());
            let what = format!("environment `{env}`");
            LockFile::acquire(&path, &what, wait)
                .await
                .map_err(|source| Error::EnvironmentBusy {
                    env: env.to_string(),
                    source,
                })
        }
        Place::Runtime(runtime) => {
            let path = crate::runtime::install::lock_path(paths, &runtime.key);
            let what = format!("runtime `{}`", runtime.key);
            LockFile::acquire(&path, &what, wait)
                .await
                .map_err(|source| Error::RuntimeBusy {
                    key: runtime.key.clone(),
                    source,
                })
        }
    }
}

/// The runtime `request` names (a key, a version such as `3.12`, or an interpreter path).
/// Finding it may run interpreters (discovery), so it runs on a blocking thread.
pub(super) async fn resolve_runtime(paths: &Paths, request: &str) -> Result<Place, Error> {
    let paths = paths.clone();
    let request = request.to_string();
    let resolved = tokio::task::spawn_blocking(move || {
        let config = crate::Config::load(&paths).unwrap_or_default();
        crate::runtime::Runtimes::new(paths, config).resolve(Some(&request))
    })
    .await
    .map_err(|e| Error::Runtime(crate::runtime::Error::Task { source: e }))?;
    let runtime = resolved?;
    Ok(Place::Runtime(RuntimeRef {
        key: runtime.key,
        python: runtime.python,
    }))
}
