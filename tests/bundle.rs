//! Offline bundles end to end: `bundle` a project (the test runtime from a local mirror,
//! two wheels built here), then `up --bundle` in a home whose every index and mirror is a
//! closed port: the runtime installs, the environment is made from the bundle's wheels,
//! the declared backend starts and answers. Tampered bundles are refused before the home
//! is touched; bundling is reproducible.

#[path = "support/backend.rs"]
mod backend;
#[path = "support/http.rs"]
mod http;
#[path = "support/pbs.rs"]
mod pbs;
#[path = "support/venv.rs"]
mod support_venv;

use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use http::{Behaviour, FileServer};

/// Nothing answers here.
const CLOSED: &str = "http://127.0.0.1:1";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A minimal wheel: one module whose `VALUE` is `value`, with METADATA, WHEEL and a
/// RECORD of real hashes. Returns its file name.
fn build_wheel(dir: &Path, name: &str, version: &str, tags: &str, value: &str) -> PathBuf {
    let file = dir.join(format!("{name}-{version}-{tags}.whl"));
    let dist_info = format!("{name}-{version}.dist-info");
    let files: Vec<(String, String)> = vec![
        (
            format!("{name}/__init__.py"),
            format!("VALUE = {value:?}\n"),
        ),
        (
            format!("{dist_info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        ),
        (
            format!("{dist_info}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: beep-test\nRoot-Is-Purelib: true\nTag: {tags}\n"
            ),
        ),
    ];
    let mut record = String::new();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&file).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (path, content) in &files {
        zip.start_file(path.as_str(), options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(content.as_bytes()));
        record.push_str(&format!("{path},sha256={hash},{}\n", content.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    zip.start_file(format!("{dist_info}/RECORD"), options)
        .unwrap();
    zip.write_all(record.as_bytes()).unwrap();
    zip.finish().unwrap();
    file
}

/// A `uv` wheel for this platform, shaped as PyPI's are (the executable under
/// `uv-<version>.data/scripts/`), on a `file://` simple index (`<index>/uv/index.html`
/// with its sha256). Its `uv` is a small script that logs each call to `log` and runs
/// the tests' uv binary: the disk is shared and limited, and the 40 MB binary would be
/// copied into every bundle (and every tampered copy) otherwise. Returns the index URL,
/// the wheel and the script.
fn uv_index(dir: &Path, log: &Path) -> (String, PathBuf, String) {
    let uv = support_venv::shared_uv();
    let out = Command::new(uv).arg("--version").output().unwrap();
    let version = text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        uv.display()
    );
    let page_dir = dir.join("index").join("uv");
    std::fs::create_dir_all(&page_dir).unwrap();
    let name = format!("uv-{version}-py3-none-manylinux_2_17_x86_64.whl");
    let wheel = page_dir.join(&name);
    let dist_info = format!("uv-{version}.dist-info");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (path, content) in [
        (format!("uv-{version}.data/scripts/uv"), script.clone()),
        (
            format!("{dist_info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: uv\nVersion: {version}\n"),
        ),
        (
            format!("{dist_info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: beep-test\nRoot-Is-Purelib: false\nTag: py3-none-manylinux_2_17_x86_64\n".to_string(),
        ),
        (format!("{dist_info}/RECORD"), String::new()),
    ] {
        zip.start_file(path, options.unix_permissions(0o755)).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let sha = sha256(&std::fs::read(&wheel).unwrap());
    std::fs::write(
        page_dir.join("index.html"),
        format!("<html><body><a href=\"{name}#sha256={sha}\">{name}</a></body></html>\n"),
    )
    .unwrap();
    (
        format!("file://{}", dir.join("index").display()),
        wheel,
        script,
    )
}

/// A project folder, a mirror serving the test runtime and a catalog naming it.
struct Project {
    dir: tempfile::TempDir,
    server: FileServer,
    /// The simple index holding the `uv` wheel `bundle` carries, the wheel, its `uv`
    /// script and the log that script appends each call to.
    uv_index: String,
    uv_wheel: PathBuf,
    uv_script: String,
    uv_log: PathBuf,
}

impl Project {
    /// `extra_lock` is appended to the lock's `[[packages]]`.
    fn new(extra_packages: &str) -> Self {
        let fx = pbs::fixture();
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        pbs::mirror_with(&mirror, &[(&fx.targz.name, &fx.targz.path)]);
        pbs::catalog(
            &dir.path().join("catalog.json"),
            &[(&fx.version, &fx.targz.name, &fx.targz.sha256)],
        );
        let server = FileServer::start(mirror, Behaviour::default());

        let wheels = dir.path().join("wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        let alpha = build_wheel(&wheels, "alpha", "1.0", "py3-none-any", "from alpha");
        let beta = build_wheel(&wheels, "beta", "2.0", "py2.py3-none-any", "from beta");
        let project = dir.path().join("app");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join("beep.toml"),
            format!("[python]\nversion = \"{}\"\n\n[environment]\nname = \"offline\"\nrequirements = [\"alpha\", \"beta\"]\n\n[[backend]]\nname = \"api\"\ntransport = \"pipe\"\n",
                fx.version.rsplit_once('.').unwrap().0
            ),
        )
        .unwrap();
        let key = format!("cpython-{}-linux-x86_64-gnu", fx.version);
        let sha = |p: &Path| sha256(&std::fs::read(p).unwrap());
        // One wheel by URL, one by a path relative to the lock (both PEP 751 forms).
        let lock = format!(
            r#"lock-version = "1.0"
created-by = "beep-host"

[[packages]]
name = "alpha"
version = "1.0"
wheels = [{{ url = "file://{alpha}", hashes = {{ sha256 = "{alpha_sha}" }} }}]

[[packages]]
name = "beta"
version = "2.0"
wheels = [{{ name = "beta-2.0-py2.py3-none-any.whl", path = "../wheels/beta-2.0-py2.py3-none-any.whl", hashes = {{ sha256 = "{beta_sha}" }} }}]
{extra_packages}
[tool.beep.runtime]
key = "{key}"
version = "{version}"
url = "{prefix}/{build}/{archive}"
sha256 = "{runtime_sha}"
"#,
            alpha = alpha.display(),
            alpha_sha = sha(&alpha),
            beta_sha = sha(&beta),
            version = fx.version,
            prefix = pbs::GITHUB_PREFIX,
            build = pbs::BUILD,
            archive = fx.targz.name,
            runtime_sha = fx.targz.sha256,
        );
        std::fs::write(project.join("beep.lock"), lock).unwrap();
        let uv_log = dir.path().join("uv-calls.log");
        let (uv_index, uv_wheel, uv_script) = uv_index(dir.path(), &uv_log);
        Self {
            dir,
            server,
            uv_index,
            uv_wheel,
            uv_script,
            uv_log,
        }
    }

    fn project_dir(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    /// `beep-host lock`, resolving from the wheel folder only (uv's `UV_NO_INDEX`,
    /// `UV_FIND_LINKS`): the lock as the project module writes it.
    fn lock(&self, home: &Path) {
        let out = Command::new(env!("CARGO_BIN_EXE_beep-host"))
            .arg("lock")
            .arg(self.project_dir())
            .env("BEEP_HOST_HOME", home)
            .env("BEEP_PYTHON_CATALOG", self.dir.path().join("catalog.json"))
            .env("BEEP_PYTHON_MIRROR", self.server.url())
            .env("BEEP_HOST_INSTALLER", "uv")
            .env("BEEP_HOST_UV", support_venv::shared_uv())
            .env(
                "UV_CACHE_DIR",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uv-cache"),
            )
            .env("UV_NO_INDEX", "1")
            .env("UV_FIND_LINKS", self.dir.path().join("wheels"))
            .env_remove("VIRTUAL_ENV")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_ok(&out);
    }

    /// `beep-host bundle` in `home` (a bundling machine: catalog and mirror are set).
    fn bundle(&self, home: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_beep-host"))
            .arg("bundle")
            .arg(self.project_dir())
            .args(args)
            .env("BEEP_HOST_HOME", home)
            .env("BEEP_PYTHON_CATALOG", self.dir.path().join("catalog.json"))
            .env("BEEP_PYTHON_MIRROR", self.server.url())
            .env("BEEP_HOST_UV_INDEX", &self.uv_index)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }
}

/// Whether `unshare -n` makes a network namespace here (root, or user namespaces).
fn can_unshare() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        ["-n", "-rn"].iter().any(|flag| {
            Command::new("unshare")
                .args([flag, "true"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
    })
}

/// `up --bundle` with every index and mirror on a closed port and, where `unshare -n`
/// works, in a network namespace with no network at all.
fn offline(home: &backend::Home, args: &[&str]) -> Command {
    let mut command = home.command(args);
    if can_unshare() {
        let inner = command;
        let flag = if Command::new("unshare")
            .args(["-n", "true"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            "-n"
        } else {
            "-rn"
        };
        command = Command::new("unshare");
        command
            .arg(flag)
            .arg(inner.get_program())
            .args(inner.get_args());
        for (key, value) in inner.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
    }
    closed_network(&mut command, home.root());
    command
}

/// Every index and mirror on a closed port, and the uv installer.
fn closed_network(command: &mut Command, home: &Path) {
    command
        .env("BEEP_PYTHON_MIRROR", CLOSED)
        .env("BEEP_PYTHON_CATALOG", format!("{CLOSED}/catalog.json"))
        .env("UV_INDEX_URL", format!("{CLOSED}/simple"))
        .env("UV_DEFAULT_INDEX", format!("{CLOSED}/simple"))
        .env("PIP_INDEX_URL", format!("{CLOSED}/simple"))
        .env("UV_PYTHON_INSTALL_MIRROR", CLOSED)
        .env("UV_CACHE_DIR", home.join("uv-cache"))
        .env("BEEP_HOST_INSTALLER", "uv")
        .env("BEEP_HOST_UV", support_venv::shared_uv())
        .env("HTTP_PROXY", CLOSED)
        .env("HTTPS_PROXY", CLOSED)
        .env("ALL_PROXY", CLOSED)
        .env_remove("VIRTUAL_ENV");
}

/// Rewrite a zip member by member: `edit` sees each (name, bytes) and returns what to
/// store (`None` drops it); `add` is appended.
fn rewrite(
    from: &Path,
    to: &Path,
    edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>,
    add: &[(&str, &[u8])],
) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if let Some(bytes) = edit(&name, bytes) {
            out.start_file(name.as_str(), options).unwrap();
            out.write_all(&bytes).unwrap();
        }
    }
    for (name, bytes) in add {
        out.start_file(*name, options).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap();
}

#[test]
fn a_bundle_brings_a_project_up_without_the_network_and_tampering_is_refused() {
    let project = Project::new("");
    let bundler = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let zip_path = out_dir.path().join("app.zip");
    let zip = zip_path.to_str().unwrap();
    project.lock(bundler.path());
    let stdout = assert_ok(&project.bundle(bundler.path(), &["-o", zip]));
    assert!(stdout.contains("linux-x86_64-gnu"), "{stdout}");

    // Reproducible: again (the runtime now from the download cache), and from a fresh
    // home (downloaded again): the same bytes.
    let again = out_dir.path().join("again.zip");
    assert_ok(&project.bundle(bundler.path(), &["-o", again.to_str().unwrap()]));
    let fresh_home = tempfile::tempdir().unwrap();
    let fresh = out_dir.path().join("fresh.zip");
    assert_ok(&project.bundle(fresh_home.path(), &["-o", fresh.to_str().unwrap()]));
    let bytes = std::fs::read(&zip_path).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&again).unwrap(),
        "bundling twice differs"
    );
    assert_eq!(
        bytes,
        std::fs::read(&fresh).unwrap(),
        "bundling in another home differs"
    );

    // The manifest comes first and names every member with its hash.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().to_string())
        .collect();
    let fx = pbs::fixture();
    assert_eq!(
        names,
        [
            "manifest.json".to_string(),
            format!("runtimes/{}", fx.targz.name),
            format!(
                "tools/{}",
                project.uv_wheel.file_name().unwrap().to_str().unwrap()
            ),
            "wheels/alpha-1.0-py3-none-any.whl".into(),
            "wheels/beta-2.0-py2.py3-none-any.whl".into(),
        ]
    );
    let mut manifest = String::new();
    archive
        .by_index(0)
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["members"][0]["sha256"], fx.targz.sha256.as_str());
    assert_eq!(manifest["created"], "1980-01-01T00:00:00Z");
    assert_eq!(manifest["format"], 2);
    assert_eq!(
        manifest["platforms"][0]["uv"],
        format!(
            "tools/{}",
            project.uv_wheel.file_name().unwrap().to_str().unwrap()
        )
    );
    assert_eq!(
        manifest["members"][1]["sha256"],
        sha256(&std::fs::read(&project.uv_wheel).unwrap())
    );

    // inspect: every member verifies.
    let inspect = backend::Home::new();
    let listing = assert_ok(&inspect.cli(&["bundle", "inspect", zip]));
    assert!(listing.contains("Bundle verifies."), "{listing}");
    assert!(listing.contains(", uv from uv-"), "{listing}");
    let json: serde_json::Value = serde_json::from_str(&assert_ok(
        &inspect.cli(&["bundle", "inspect", zip, "--json"]),
    ))
    .unwrap();
    assert_eq!(json["problems"], serde_json::json!([]));
    assert!(
        json["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["verified"] == true)
    );

    // Tampered bundles: refused naming the member, the home left as it was.
    let wheel = "wheels/alpha-1.0-py3-none-any.whl";
    let runtime = format!("runtimes/{}", fx.targz.name);
    let tampered = |name: &str| out_dir.path().join(name);
    rewrite(
        &zip_path,
        &tampered("byte.zip"),
        |name, mut bytes| {
            if name == wheel {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 1;
            }
            Some(bytes)
        },
        &[],
    );
    rewrite(
        &zip_path,
        &tampered("added.zip"),
        |_, bytes| Some(bytes),
        &[("wheels/evil-1.0-py3-none-any.whl", b"not a wheel")],
    );
    rewrite(
        &zip_path,
        &tampered("missing.zip"),
        |name, bytes| (name != wheel).then_some(bytes),
        &[],
    );
    let other = "0".repeat(64);
    rewrite(
        &zip_path,
        &tampered("manifest.zip"),
        |name, bytes| {
            if name != "manifest.json" {
                return Some(bytes);
            }
            // The runtime's hash changed where the manifest records it (not in the
            // lock text it carries).
            let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            manifest["members"][0]["sha256"] = other.clone().into();
            manifest["platforms"][0]["runtime"]["sha256"] = other.clone().into();
            Some(serde_json::to_vec_pretty(&manifest).unwrap())
        },
        &[],
    );
    // A member that inflates far past its recorded size: read only one byte past it.
    let wheel_size = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap())
        .unwrap()
        .by_name(wheel)
        .unwrap()
        .size();
    rewrite(
        &zip_path,
        &tampered("grown.zip"),
        |name, mut bytes| {
            if name == wheel {
                bytes.resize(bytes.len() + (8 << 20), 0);
            }
            Some(bytes)
        },
        &[],
    );
    // A flipped byte under an unchanged zip CRC, and a truncated file.
    let mut raw = bytes.clone();
    let marker = b"from alpha";
    let at = raw.windows(marker.len()).position(|w| w == marker).unwrap();
    raw[at] ^= 1;
    std::fs::write(tampered("raw.zip"), &raw).unwrap();
    std::fs::write(tampered("short.zip"), &bytes[..bytes.len() / 2]).unwrap();

    let home = backend::Home::new();
    let target = tempfile::tempdir().unwrap();
    let before = support_venv::snapshot(home.root());
    for (file, says) in [
        ("byte.zip", format!("member `{wheel}` has sha256")),
        (
            "grown.zip",
            format!(
                "member `{wheel}` has {} bytes, the manifest says {wheel_size}",
                wheel_size + 1
            ),
        ),
        (
            "added.zip",
            "member `wheels/evil-1.0-py3-none-any.whl` is not in the manifest".into(),
        ),
        ("missing.zip", format!("member `{wheel}` is missing")),
        ("manifest.zip", format!("member `{runtime}`")),
        ("raw.zip", format!("member `{wheel}`")),
        ("short.zip", "not a readable zip".into()),
    ] {
        let path = tampered(file);
        let out = offline(
            &home,
            &[
                "up",
                "--bundle",
                path.to_str().unwrap(),
                target.path().to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
        assert!(!out.status.success(), "{file} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(&says), "{file}: expected {says:?} in:\n{err}");
        assert_eq!(
            support_venv::snapshot(home.root()),
            before,
            "{file} changed the home"
        );
        assert!(
            std::fs::read_dir(target.path()).unwrap().next().is_none(),
            "{file} wrote into the project folder"
        );
        let inspected = inspect.cli(&["bundle", "inspect", path.to_str().unwrap()]);
        assert!(!inspected.status.success(), "inspect passed {file}");
    }
    assert!(
        home.daemon_pid().is_none(),
        "a refused bundle started the daemon"
    );

    // The good bundle, offline: runtime, environment, backend, eval.
    let started = std::time::Instant::now();
    let out = offline(
        &home,
        &[
            "up",
            "--bundle",
            zip,
            target.path().to_str().unwrap(),
            "--json",
        ],
    )
    .output()
    .unwrap();
    let up: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    eprintln!("up --bundle took {:?}", started.elapsed());
    assert_eq!(
        up["runtime"],
        format!("cpython-{}-linux-x86_64-gnu", fx.version)
    );
    assert_eq!(up["runtime_installed"], true);
    assert_eq!(up["environment"], "offline");
    assert_eq!(up["environment_created"], true);
    assert!(target.path().join("beep.toml").is_file());
    assert!(target.path().join("beep.lock").is_file());
    let backends = up["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 1, "{up}");
    let id = backends[0]["id"].as_str().unwrap();
    let answer = assert_ok(&home.cli(&[
        "eval",
        id,
        "__import__('alpha').VALUE + ' and ' + __import__('beta').VALUE + ' in ' + __import__('sys').prefix",
    ]));
    assert!(answer.contains("from alpha and from beta"), "{answer}");
    assert!(answer.contains("envs"), "{answer}");

    // The runtime came from the bundle: the mirror was never asked by `up`.
    let ps = home.ps();
    assert_eq!(ps.len(), 1);
    // A second `up` starts nothing new.
    let again: serde_json::Value = serde_json::from_str(&assert_ok(
        &offline(
            &home,
            &[
                "up",
                "--bundle",
                zip,
                target.path().to_str().unwrap(),
                "--json",
            ],
        )
        .output()
        .unwrap(),
    ))
    .unwrap();
    assert_eq!(again["backends"][0]["action"], "unchanged", "{again}");
    assert_eq!(again["runtime_installed"], false);
    assert_eq!(home.ps().len(), 1);
}

#[test]
fn a_requirement_without_a_wheel_for_a_platform_names_both() {
    let fx = pbs::fixture();
    let (major, minor) = {
        let mut parts = fx.version.split('.');
        (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        )
    };
    let cp = format!("cp{major}{minor}");
    let scratch = tempfile::tempdir().unwrap();
    let native = build_wheel(
        scratch.path(),
        "gamma",
        "0.3",
        &format!("{cp}-{cp}-manylinux_2_17_x86_64"),
        "native",
    );
    let extra = format!(
        "\n[[packages]]\nname = \"gamma\"\nversion = \"0.3\"\nwheels = [{{ url = \"file://{}\", hashes = {{ sha256 = \"{}\" }} }}]\n",
        native.display(),
        sha256(&std::fs::read(&native).unwrap())
    );
    let project = Project::new(&extra);
    let home = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let zip = out_dir.path().join("x.zip");
    let out = project.bundle(
        home.path(),
        &[
            "-o",
            zip.to_str().unwrap(),
            "--platform",
            "linux-x86_64-gnu",
            "--platform",
            "windows-x86_64",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("`gamma` 0.3 has no wheel for windows-x86_64"),
        "{err}"
    );
    assert!(!zip.exists(), "a bundle was written");
    // For this platform alone the native wheel is found and the bundle is written.
    assert_ok(&project.bundle(home.path(), &["-o", zip.to_str().unwrap()]));
    let inspected = assert_ok(
        &Command::new(env!("CARGO_BIN_EXE_beep-host"))
            .args(["bundle", "inspect", zip.to_str().unwrap()])
            .env("BEEP_HOST_HOME", home.path())
            .output()
            .unwrap(),
    );
    assert!(inspected.contains("gamma-0.3"), "{inspected}");
}

#[test]
fn a_bad_beep_toml_is_refused_with_its_line_and_nothing_is_written() {
    let project = Project::new("");
    let toml = project.project_dir().join("beep.toml");
    let mut declared = std::fs::read_to_string(&toml).unwrap();
    // A misspelt key on the last line: the project module refuses it; a loose reader
    // would not have noticed.
    declared.push_str("restrat = \"always\"\n");
    let line = declared.lines().count();
    std::fs::write(&toml, declared).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let zip = out_dir.path().join("bad.zip");
    let out = project.bundle(home.path(), &["-o", zip.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("beep.toml:{line}:")), "{err}");
    assert!(err.contains("restrat"), "{err}");
    assert!(!zip.exists(), "a bundle was written");
    assert!(
        std::fs::read_dir(out_dir.path()).unwrap().next().is_none(),
        "something was written next to the bundle"
    );
}

/// A running `beep-host serve --no-grpc`, killed on drop.
struct Served {
    child: std::process::Child,
    base: String,
    token: String,
}

impl Served {
    fn start(mut command: Command) -> Self {
        use std::io::BufRead;
        let mut child = command
            .args(["serve", "--http", "127.0.0.1:0", "--no-grpc"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ready["record"].as_str().unwrap()).unwrap())
                .unwrap();
        Self {
            child,
            base: format!("http://{}", ready["http"].as_str().unwrap()),
            token: record["token"].as_str().unwrap().to_string(),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_api_writes_a_bundle_and_brings_a_project_up_from_it() {
    let project = Project::new("");
    let bundler = tempfile::tempdir().unwrap();
    project.lock(bundler.path());
    let out_dir = tempfile::tempdir().unwrap();
    let zip = out_dir.path().join("api.zip");
    let dir = project.project_dir();

    // The bundling machine: catalog and mirror are set.
    let mut command = Command::new(env!("CARGO_BIN_EXE_beep-host"));
    command
        .env("BEEP_HOST_HOME", bundler.path())
        .env(
            "BEEP_PYTHON_CATALOG",
            project.dir.path().join("catalog.json"),
        )
        .env("BEEP_PYTHON_MIRROR", project.server.url())
        .env("BEEP_HOST_UV_INDEX", &project.uv_index)
        .env_remove("RUST_LOG");
    let served = Served::start(command);
    let (status, refused) = served
        .post(
            "/bundles",
            serde_json::json!({"dir": dir, "output": "relative.zip"}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("relative.zip"),
        "{refused}"
    );
    let (status, refused) = served
        .post(
            "/bundles",
            serde_json::json!({"dir": dir, "output": zip, "platforms": ["amiga"]}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "invalid");
    assert!(!zip.exists());
    let (status, written) = served
        .post("/bundles", serde_json::json!({"dir": dir, "output": zip}))
        .await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["path"], zip.to_str().unwrap());
    assert_eq!(written["size"], std::fs::metadata(&zip).unwrap().len());
    assert_eq!(written["manifest"]["members"].as_array().unwrap().len(), 4);
    // The same bytes as the CLI writes.
    let cli_zip = out_dir.path().join("cli.zip");
    assert_ok(&project.bundle(bundler.path(), &["-o", cli_zip.to_str().unwrap()]));
    assert_eq!(
        std::fs::read(&zip).unwrap(),
        std::fs::read(&cli_zip).unwrap()
    );
    drop(served);

    // The air-gapped machine: every index and mirror closed.
    let home = backend::Home::new();
    let target = tempfile::tempdir().unwrap();
    let mut command = home.command(&[]);
    closed_network(&mut command, home.root());
    let served = Served::start(command);
    let short = out_dir.path().join("short.zip");
    let bytes = std::fs::read(&zip).unwrap();
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let (status, refused) = served
        .post(
            "/projects/up",
            serde_json::json!({"dir": target.path(), "bundle": short}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not a readable zip"),
        "{refused}"
    );
    assert!(
        std::fs::read_dir(target.path()).unwrap().next().is_none(),
        "a refused bundle wrote into the project folder"
    );
    let (status, up) = served
        .post(
            "/projects/up",
            serde_json::json!({"dir": target.path(), "bundle": zip}),
        )
        .await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["runtime_installed"], true, "{up}");
    assert_eq!(up["environment"], "offline", "{up}");
    assert_eq!(up["backends"][0]["action"], "started", "{up}");
    let id = up["backends"][0]["id"].as_str().unwrap();
    let answer = assert_ok(&home.cli(&["eval", id, "__import__('alpha').VALUE"]));
    assert!(answer.contains("from alpha"), "{answer}");
    drop(served);
}

#[test]
fn up_from_a_bundle_provisions_the_bundles_uv_on_a_machine_without_uv() {
    let project = Project::new("");
    let bundler = tempfile::tempdir().unwrap();
    project.lock(bundler.path());
    let out_dir = tempfile::tempdir().unwrap();
    let zip = out_dir.path().join("app.zip");
    assert_ok(&project.bundle(bundler.path(), &["-o", zip.to_str().unwrap()]));

    // No uv anywhere: not on PATH, not named by BEEP_HOST_UV, not in the tools dir; and
    // every index closed, so `pip install uv` cannot provision it either.
    let home = backend::Home::new();
    let tools = home.paths.tools();
    assert!(!tools.join("uv").exists());
    let target = tempfile::tempdir().unwrap();
    let out = offline(
        &home,
        &[
            "up",
            "--bundle",
            zip.to_str().unwrap(),
            target.path().to_str().unwrap(),
            "--json",
        ],
    )
    .env_remove("BEEP_HOST_UV")
    .env("PATH", support_venv::path_without_uv())
    .output()
    .unwrap();
    let up: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    assert_eq!(up["environment_created"], true, "{up}");

    // The uv in force is the bundle's: its wheel's `uv`, in the tools dir, and it ran.
    let provisioned = tools.join("uv").join("bin").join("uv");
    assert_eq!(
        std::fs::read_to_string(&provisioned).unwrap(),
        project.uv_script,
        "the provisioned uv is not the bundle's"
    );
    let calls = std::fs::read_to_string(&project.uv_log).unwrap_or_default();
    assert!(
        calls.contains("pip sync") && calls.contains("--no-index"),
        "the bundle's uv did not sync the environment: {calls:?}"
    );
    let env = beep_host::venv::env_dir(
        &home.paths,
        &beep_host::venv::EnvName::parse("offline").unwrap(),
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.join("beep-env.json")).unwrap()).unwrap();
    assert_eq!(record["installer"], "uv", "{record}");
    let id = up["backends"][0]["id"].as_str().unwrap();
    let answer = assert_ok(&home.cli(&["eval", id, "__import__('beta').VALUE"]));
    assert!(answer.contains("from beta"), "{answer}");
}
