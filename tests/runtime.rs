//! Managed runtimes end to end: the real `beep-host` binary installs a
//! python-build-standalone-shaped archive from a real HTTP server on 127.0.0.1.

#[path = "support/http.rs"]
mod http;
#[path = "support/pbs.rs"]
mod pbs;

use http::{Behaviour, FileServer};
use pbs::{Home, fixture, text};
use std::path::Path;
use std::process::Command;

/// A mirror serving the fixture's archives, and a home whose catalog names `name` with `sha`.
fn setup(
    name: &str,
    archive: &Path,
    sha: &str,
    behaviour: Behaviour,
) -> (FileServer, Home, tempfile::TempDir) {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    pbs::mirror_with(&dir.path().join("mirror"), &[(name, archive)]);
    let catalog = dir.path().join("catalog.json");
    pbs::catalog(&catalog, &[(&fx.version, name, sha)]);
    let server = FileServer::start(dir.path().join("mirror"), behaviour);
    let home = Home::new(catalog, server.url());
    (server, home, dir)
}

/// The same, for one of the fixture's archives as it is.
fn setup_archive(
    archive: &pbs::Archive,
    behaviour: Behaviour,
) -> (FileServer, Home, tempfile::TempDir) {
    setup(&archive.name, &archive.path, &archive.sha256, behaviour)
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Nothing half-installed: no runtime listed, no temp dir, no partial download.
fn assert_nothing_installed(home: &Home) {
    assert!(home.managed().is_empty(), "a managed runtime is listed");
    let leftovers: Vec<String> = home.runtime_dir_names();
    assert!(
        leftovers.is_empty(),
        "runtimes dir has leftovers: {leftovers:?}"
    );
    let partials: Vec<String> = home
        .downloads()
        .into_iter()
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(partials.is_empty(), "partial downloads left: {partials:?}");
}

#[test]
fn installs_from_local_mirror_and_runs_from_its_new_place() {
    let fx = fixture();
    let (server, home, _dir) = setup_archive(&fx.targz, Behaviour::default());
    let out = home.run(&["runtime", "install", "3.11", "--json"]);
    assert_ok(&out);
    let managed = home.managed();
    assert_eq!(managed.len(), 1, "{managed:?}");
    let runtime = &managed[0];
    assert_eq!(runtime["version"], fx.version.as_str());
    assert_eq!(runtime["kind"], "managed");
    assert_eq!(
        runtime["key"],
        format!(
            "cpython-{}-linux-{}-gnu",
            fx.version,
            std::env::consts::ARCH
        )
    );
    let python = Path::new(runtime["python"].as_str().unwrap());
    let prefix = Command::new(python)
        .args(["-c", "import sys, ssl, sqlite3, ctypes; print(sys.prefix)"])
        .output()
        .unwrap();
    assert_ok(&prefix);
    let prefix = text(&prefix.stdout).trim().to_string();
    let home_real = std::fs::canonicalize(home.path()).unwrap();
    assert!(
        Path::new(&prefix).starts_with(&home_real),
        "sys.prefix {prefix} not inside {}",
        home_real.display()
    );
    assert!(Path::new(&prefix).join("beep-runtime.json").is_file());
    // The build-time configuration (prefix `/install`, the build machine's tools) now names
    // the runtime's own place and ordinary tools, so C extensions can build against it.
    let config = Command::new(python)
        .args([
            "-c",
            "import sysconfig as s, json; print(json.dumps([s.get_config_var(v) for v in \
             ('INCLUDEPY', 'LIBDIR', 'CC', 'AR')]))",
        ])
        .output()
        .unwrap();
    assert_ok(&config);
    let config: Vec<String> = serde_json::from_slice(&config.stdout).unwrap();
    let root = runtime["path"].as_str().unwrap();
    assert!(config[0].starts_with(root), "{config:?} {root}");
    assert!(config[1].starts_with(root), "{config:?} {root}");
    assert!(config[2].starts_with("cc"), "{config:?}");
    assert_eq!(config[3], "ar");
    let pc = std::fs::read_to_string(Path::new(root).join("lib/pkgconfig/python-3.11.pc"));
    assert!(pc.unwrap().starts_with(&format!("prefix={root}\n")));
    // Exactly one plain GET, to the mirror, at the catalog's path.
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].path,
        format!("/{}/{}", pbs::BUILD, fx.targz.name.replace('+', "%2B"))
    );
    // No temp dir, no partial file left behind.
    assert_eq!(home.runtime_dir_names().len(), 1);
    assert!(home.downloads().is_empty(), "{:?}", home.downloads());
    // A second install is a no-op.
    let again = home.run(&["runtime", "install", &fx.version]);
    assert_ok(&again);
    assert!(
        text(&again.stdout).contains("already installed"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn wrong_sha256_names_both_hashes_and_leaves_nothing() {
    let fx = fixture();
    let wrong = "0".repeat(64);
    let (_server, home, _dir) = setup(&fx.targz.name, &fx.targz.path, &wrong, Behaviour::default());
    let out = home.run(&["runtime", "install", "3.11"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("Hash mismatch"), "{err}");
    assert!(err.contains(&wrong), "expected hash missing: {err}");
    assert!(
        err.contains(&fx.targz.sha256),
        "computed hash missing: {err}"
    );
    assert!(err.contains("127.0.0.1"), "URL missing: {err}");
    assert_nothing_installed(&home);
}

#[test]
fn dropped_connection_resumes_with_range() {
    let fx = fixture();
    let behaviour = Behaviour {
        drop_first_after: Some(3_000_000),
        ..Behaviour::default()
    };
    let (server, home, _dir) = setup_archive(&fx.targz, behaviour);
    let out = home.run(&["runtime", "install", "3.11"]);
    assert_ok(&out);
    assert_eq!(home.managed().len(), 1);
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range, None);
    let range = seen[1]
        .range
        .as_deref()
        .expect("the second request resumes with Range");
    let start: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(start > 0 && start <= 3_000_000, "{range}");
}

#[test]
fn server_without_range_support_restarts_from_zero() {
    let fx = fixture();
    let behaviour = Behaviour {
        drop_first_after: Some(2_000_000),
        no_range: true,
        ..Behaviour::default()
    };
    let (server, home, _dir) = setup_archive(&fx.targz, behaviour);
    let out = home.run(&["runtime", "install", "3.11"]);
    assert_ok(&out);
    assert_eq!(home.managed().len(), 1);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(home.runtime_dir_names().len(), 1);
}

#[test]
fn concurrent_installs_both_succeed_with_one_runtime_dir() {
    let fx = fixture();
    let (_server, home, _dir) = setup_archive(&fx.targz, Behaviour::default());
    let a = home
        .command()
        .args(["runtime", "install", "3.11"])
        .spawn()
        .unwrap();
    let b = home
        .command()
        .args(["runtime", "install", "3.11"])
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_ok(&a);
    assert_ok(&b);
    assert_eq!(
        home.runtime_dir_names(),
        vec![format!(
            "cpython-{}-linux-{}-gnu",
            fx.version,
            std::env::consts::ARCH
        )]
    );
    assert_eq!(home.managed().len(), 1);
}

/// A tar.gz whose entries are given raw (bypassing the tar crate's own path checks).
fn evil_targz(path: &Path, entries: &[(&str, tar::EntryType, &str)]) -> String {
    let mut builder = tar::Builder::new(Vec::new());
    let mut ok = tar::Header::new_gnu();
    ok.set_size(2);
    ok.set_mode(0o755);
    builder
        .append_data(&mut ok, "python/bin/python3", &b"#!"[..])
        .unwrap();
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(if *kind == tar::EntryType::Regular {
            4
        } else {
            0
        });
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        let body: &[u8] = if *kind == tar::EntryType::Regular {
            b"evil"
        } else {
            b""
        };
        builder.append(&h, body).unwrap();
    }
    let data = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(path, &bytes).unwrap();
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(&bytes))
}

#[test]
fn archives_with_parent_entries_or_outside_links_are_refused() {
    let fx = fixture();
    let cases: [(&str, tar::EntryType, &str); 3] = [
        ("python/../../../escaped.txt", tar::EntryType::Regular, ""),
        ("python/lib/abs-link", tar::EntryType::Symlink, "/etc"),
        (
            "python/lib/rel-link",
            tar::EntryType::Symlink,
            "../../../../..",
        ),
    ];
    for case in cases {
        let work = tempfile::tempdir().unwrap();
        let name = format!("cpython-{}+{}-evil.tar.gz", fx.version, pbs::BUILD);
        let archive = work.path().join(&name);
        let sha = evil_targz(&archive, &[case]);
        let (_server, home, _dir) = setup(&name, &archive, &sha, Behaviour::default());
        // A home of its own inside a private directory, so only this install can write beside it.
        let outer = tempfile::tempdir().unwrap();
        let home = Home::new_in(outer.path(), home.catalog.clone(), home.mirror.clone());
        let before: Vec<_> = std::fs::read_dir(home.path().parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        let out = home.run(&["runtime", "install", "3.11"]);
        assert!(!out.status.success(), "{case:?} was accepted");
        let err = text(&out.stderr);
        assert!(
            err.contains("Refused unsafe archive entry"),
            "{case:?}: {err}"
        );
        assert_nothing_installed(&home);
        let after: Vec<_> = std::fs::read_dir(home.path().parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            after
                .iter()
                .all(|n| before.contains(n) || n.to_string_lossy().starts_with(".tmp")),
            "written outside: {after:?}"
        );
        assert!(
            !home.path().join("escaped.txt").exists()
                && !home.path().join("data/escaped.txt").exists()
        );
    }
}

#[test]
fn zip_archives_install_too() {
    let fx = fixture();
    let (_server, home, _dir) = setup_archive(&fx.zip, Behaviour::default());
    let out = home.run(&["runtime", "install", "3.11"]);
    assert_ok(&out);
    let managed = home.managed();
    assert_eq!(managed.len(), 1);
    let python = managed[0]["python"].as_str().unwrap();
    let ran = Command::new(python)
        .args(["-c", "import sys, json; print(sys.version_info[:3])"])
        .output()
        .unwrap();
    assert_ok(&ran);
}

#[test]
fn config_passes_on_a_good_home_and_fails_when_the_default_runtime_is_gone() {
    let fx = fixture();
    let (_server, home, _dir) = setup_archive(&fx.targz, Behaviour::default());
    assert_ok(&home.run(&["init", "--version", "3.11"]));
    let out = home.run(&["config", "--json"]);
    assert_ok(&out);
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(checks.iter().all(|c| c["status"] == "ok"), "{checks:?}");
    let default = checks
        .iter()
        .find(|c| c["name"] == "default runtime")
        .unwrap();
    assert!(default["message"].as_str().unwrap().contains(&fx.version));

    std::fs::remove_dir_all(home.runtimes_dir()).unwrap();
    let out = home.run(&["config", "--json"]);
    assert!(!out.status.success());
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let default = checks
        .iter()
        .find(|c| c["name"] == "default runtime")
        .unwrap();
    assert_eq!(default["status"], "fail");
    assert!(
        default["message"].as_str().unwrap().contains("missing"),
        "{default}"
    );
    // The human form says the same.
    let out = home.run(&["config"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("FAIL  default runtime"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn config_fails_on_an_unreadable_catalog() {
    let home = Home::new(
        "/nonexistent/catalog.json".into(),
        "http://127.0.0.1:9".into(),
    );
    let out = home.run(&["config", "--json"]);
    assert!(!out.status.success());
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let catalog = checks.iter().find(|c| c["name"] == "catalog").unwrap();
    assert_eq!(catalog["status"], "fail");
    assert!(
        catalog["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/catalog.json"),
        "{catalog}"
    );
}

#[test]
#[cfg(unix)] // SIGINT to a child process
fn cancel_with_ctrl_c_removes_temp_files_and_the_next_install_resumes() {
    use std::time::{Duration, Instant};

    let fx = fixture();
    let behaviour = Behaviour {
        stall_after: Some(1_000_000),
        ..Behaviour::default()
    };
    let (server, home, _dir) = setup_archive(&fx.targz, behaviour);
    let child = home
        .command()
        .args(["runtime", "install", "3.11"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the download is under way (the partial file exists and has bytes).
    let start = Instant::now();
    let partial = home
        .path()
        .join(format!("cache/downloads/{}.partial", fx.targz.name));
    while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "download never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        home.runtime_dir_names()
            .iter()
            .any(|n| n.starts_with(".tmp-")),
        "no temp dir while installing"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cancelled"),
        "{}",
        text(&out.stderr)
    );
    // No temp dir and no runtime; the partial download stays for the next install.
    assert!(home.managed().is_empty());
    assert!(
        home.runtime_dir_names().is_empty(),
        "{:?}",
        home.runtime_dir_names()
    );
    let kept = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(kept > 0, "the partial download was removed");

    let out = home.run(&["runtime", "install", "3.11"]);
    assert_ok(&out);
    let seen = server.requests();
    let last = seen.last().unwrap();
    let range = last
        .range
        .as_deref()
        .expect("the next install resumes with Range");
    let from: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from > 0 && from <= kept, "{range} with {kept} bytes kept");
    assert_eq!(home.managed().len(), 1);
    assert!(home.downloads().iter().all(|n| !n.ends_with(".partial")));
}

#[test]
fn adopted_runtimes_can_be_default_but_are_never_removed() {
    let home = Home::new("/nonexistent".into(), "http://127.0.0.1:9".into());
    let real = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let real = text(&real.stdout).trim().to_string();
    let out = home.run(&["runtime", "default", &real]);
    assert_ok(&out);
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&home.run(&["runtime", "list", "--json"]).stdout).unwrap();
    let default: Vec<_> = list.iter().filter(|r| r["default"] == true).collect();
    assert_eq!(default.len(), 1, "{list:?}");
    assert_eq!(default[0]["kind"], "adopted");
    let key = default[0]["key"].as_str().unwrap();
    let out = home.run(&["runtime", "remove", key]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("never removed"),
        "{}",
        text(&out.stderr)
    );
    assert!(Path::new(&real).exists());
    // Unknown requests are clear errors.
    let out = home.run(&["runtime", "default", "9.99"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No runtime matches `9.99`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn remove_deletes_a_managed_runtime_and_forgets_the_default() {
    let fx = fixture();
    let (_server, home, _dir) = setup_archive(&fx.targz, Behaviour::default());
    assert_ok(&home.run(&["init", "--version", &fx.version]));
    let key = home.managed()[0]["key"].as_str().unwrap().to_string();
    let out = home.run(&["runtime", "remove", &key]);
    assert_ok(&out);
    assert!(home.managed().is_empty());
    assert!(
        home.runtime_dir_names().is_empty(),
        "{:?}",
        home.runtime_dir_names()
    );
    let out = home.run(&["config", "--json"]);
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let default = checks
        .iter()
        .find(|c| c["name"] == "default runtime")
        .unwrap();
    assert_eq!(default["status"], "warn", "{default}");
}

#[test]
fn unknown_versions_and_bad_requests_are_clear_errors() {
    let fx = fixture();
    let (_server, home, _dir) = setup_archive(&fx.targz, Behaviour::default());
    let out = home.run(&["runtime", "install", "3.99"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No catalog entry for Python `3.99`"),
        "{}",
        text(&out.stderr)
    );
    let out = home.run(&["runtime", "install", "../../etc"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Invalid runtime request"),
        "{}",
        text(&out.stderr)
    );
    assert_nothing_installed(&home);
}
