//! The environment core API without the CLI: the backend hook of `status` and `delete`.

use std::path::Path;
use std::sync::Mutex;

use beep_host::venv::{
    DeleteOptions, EnvBackend, EnvName, Environments, Error, RunningBackends, backends::StopError,
};
use beep_host::{Config, NoReporter, Paths};

/// A supervisor stand-in: one backend runs until `stop_in` is called.
struct OneBackend {
    running: Mutex<bool>,
}

#[async_trait::async_trait]
impl RunningBackends for OneBackend {
    fn running_in(&self, env: &EnvName) -> Vec<EnvBackend> {
        if *self.running.lock().unwrap() && env.as_str() == "served" {
            vec![EnvBackend {
                id: "b1".into(),
                pid: Some(4242),
                transport: Some("pipe".into()),
                state: "ready".into(),
            }]
        } else {
            Vec::new()
        }
    }
    async fn stop_in(&self, _env: &EnvName) -> Result<(), StopError> {
        *self.running.lock().unwrap() = false;
        Ok(())
    }
}

/// A finished environment on disk without running any tool (files only).
fn fake_env(paths: &Paths, name: &str) -> std::path::PathBuf {
    let dir = paths.envs().join(name);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("lib/python3.11/site-packages/six-1.17.0.dist-info")).unwrap();
    std::fs::write(
        dir.join("lib/python3.11/site-packages/six-1.17.0.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: six\nVersion: 1.17.0\n\nbody\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pyvenv.cfg"),
        "home = /nowhere\nversion = 3.11.7\n",
    )
    .unwrap();
    std::fs::write(dir.join("beep-env.json"), r#"{"runtime": "r1"}"#).unwrap();
    dir
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

#[tokio::test]
async fn delete_refuses_while_a_backend_runs_unless_forced() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let envs = Environments::new(paths.clone(), Config::default());
    let dir = fake_env(&paths, "served");
    let name = EnvName::parse("served").unwrap();
    let backends = OneBackend {
        running: Mutex::new(true),
    };

    let status = envs.status(&name, &backends).unwrap();
    assert_eq!(status.backends.len(), 1);
    assert_eq!(status.installed.len(), 1);
    assert_eq!(status.installed[0].version, "1.17.0");
    assert_eq!(status.environment.python_version.as_deref(), Some("3.11.7"));
    assert_eq!(status.environment.runtime.as_deref(), Some("r1"));
    assert!(
        !status.environment.healthy,
        "its base interpreter is missing"
    );

    let err = envs
        .delete(&name, DeleteOptions::default(), &backends, &NoReporter)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert!(err.to_string().contains("b1"), "{err}");
    assert!(err.to_string().contains("`--force`"), "{err}");
    assert!(exists(&dir));

    envs.delete(&name, DeleteOptions { force: true }, &backends, &NoReporter)
        .await
        .unwrap();
    assert!(!exists(&dir));
    assert!(
        !*backends.running.lock().unwrap(),
        "the backend was not stopped"
    );
    assert!(envs.list().unwrap().is_empty());
}

#[test]
fn python_of_an_environment_for_the_supervisor() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let envs = Environments::new(paths.clone(), Config::default());
    let dir = fake_env(&paths, "py");
    let name = EnvName::parse("py").unwrap();
    assert_eq!(envs.python(&name).unwrap(), dir.join("bin").join("python"));
    let missing = EnvName::parse("missing").unwrap();
    assert!(matches!(
        envs.python(&missing).unwrap_err(),
        Error::NotFound { .. }
    ));
}

#[cfg(unix)]
#[test]
fn sizes_count_the_files_and_never_follow_links() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let envs = Environments::new(paths.clone(), Config::default());
    let small = fake_env(&paths, "small");
    let big = fake_env(&paths, "big");
    // Big outside files the environments link to: a link to a file and to a directory.
    let outside = home.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("python3.11"), vec![0u8; 1 << 20]).unwrap();
    for dir in [&small, &big] {
        std::os::unix::fs::symlink(outside.join("python3.11"), dir.join("bin/python")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("lib/outside")).unwrap();
    }
    std::fs::write(
        big.join("lib/python3.11/site-packages/data.bin"),
        vec![1u8; 300_000],
    )
    .unwrap();
    // Not finished (no metadata file): not listed, so no size either.
    std::fs::create_dir_all(paths.envs().join("half/bin")).unwrap();

    // What is on disk, by hand: the fake environment's files, then the two links.
    let files = "Metadata-Version: 2.1\nName: six\nVersion: 1.17.0\n\nbody\n".len()
        + "home = /nowhere\nversion = 3.11.7\n".len()
        + r#"{"runtime": "r1"}"#.len();
    let links = outside.join("python3.11").as_os_str().len() + outside.as_os_str().len();
    let sizes = envs.sizes().unwrap();
    let named: Vec<(&str, u64)> = sizes
        .iter()
        .map(|s| (s.name.as_str(), s.size_bytes))
        .collect();
    assert_eq!(
        named,
        [
            ("big", (files + links + 300_000) as u64),
            ("small", (files + links) as u64),
        ]
    );
}
