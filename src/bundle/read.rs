//! `bundle inspect` and the first step of `up --bundle`: check the manifest against the
//! lock it carries and every member against the manifest, unpacking into a temp staging
//! dir outside the home while hashing.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::manifest::{self, MANIFEST, Manifest, is_safe_member_path};
use super::project::Lock;
use super::{BundlePlatform, Error};

/// What `inspect` found for one member.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberCheck {
    pub path: String,
    /// The size the manifest records (`None`: a member the manifest does not name).
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub verified: bool,
    /// Why it does not verify.
    pub problem: Option<String>,
}

/// A bundle's contents and whether they verify.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub manifest: Option<Manifest>,
    pub members: Vec<MemberCheck>,
    /// Every problem, each naming its member (empty when the bundle verifies).
    pub problems: Vec<String>,
}

impl Inspection {
    pub fn verified(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A verified bundle unpacked for one platform into a temp dir (removed on drop).
#[derive(Debug)]
pub struct Staged {
    pub dir: tempfile::TempDir,
    pub manifest: Manifest,
    pub platform: BundlePlatform,
}

impl Staged {
    /// The contents of the staged platform.
    pub fn contents(&self) -> &manifest::PlatformContents {
        self.manifest
            .platform(self.platform)
            .expect("staged platforms are in the manifest")
    }

    pub fn runtime_archive(&self) -> PathBuf {
        self.dir.path().join(&self.contents().runtime_member)
    }

    /// The `uv` wheel the bundle carries for this platform, when it carries one.
    pub fn uv_wheel(&self) -> Option<PathBuf> {
        self.contents().uv.as_ref().map(|m| self.dir.path().join(m))
    }

    pub fn wheels_dir(&self) -> PathBuf {
        self.dir.path().join("wheels")
    }
}

/// Check every member of the bundle at `path`; never fails on what does not verify (it
/// is listed), only on a file that is not a zip.
pub fn inspect(path: &Path) -> Result<Inspection, Error> {
    scan(path, None)
}

/// Verify the bundle and unpack what `platform` needs into a new temp dir. Refused,
/// naming the member, when anything does not verify; nothing is written elsewhere.
pub fn unpack(path: &Path, platform: BundlePlatform) -> Result<Staged, Error> {
    let dir = tempfile::Builder::new()
        .prefix("beep-up-bundle-")
        .tempdir()
        .map_err(Error::write(std::env::temp_dir()))?;
    let inspection = scan(path, Some((dir.path(), platform)))?;
    let refused = |problem: String| Error::Refused {
        path: path.to_path_buf(),
        problem,
    };
    if let Some(problem) = inspection.problems.first() {
        let more = inspection.problems.len() - 1;
        return Err(refused(if more > 0 {
            format!("{problem} (and {more} more problems)")
        } else {
            problem.clone()
        }));
    }
    let manifest = inspection
        .manifest
        .ok_or_else(|| refused("it has no manifest".into()))?;
    Ok(Staged {
        dir,
        manifest,
        platform,
    })
}

fn scan(path: &Path, extract: Option<(&Path, BundlePlatform)>) -> Result<Inspection, Error> {
    let file = fs_err::File::open(path).map_err(Error::read(path))?;
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|source| Error::NotAZip {
            path: path.to_path_buf(),
            source,
        })?;
    let mut problems = Vec::new();
    let mut inspection = Inspection {
        path: path.to_path_buf(),
        manifest: None,
        members: Vec::new(),
        problems: Vec::new(),
    };

    let manifest = match read_manifest(&mut archive) {
        Ok(m) => m,
        Err(problem) => {
            inspection.problems.push(problem);
            return Ok(inspection);
        }
    };
    problems.extend(check_manifest(&manifest));
    let wanted: BTreeSet<String> = match extract {
        Some((_, platform)) => match manifest.platform(platform) {
            Some(c) => std::iter::once(c.runtime_member.clone())
                .chain(c.uv.iter().cloned())
                .chain(c.wheels.iter().cloned())
                .collect(),
            None => {
                let carried: Vec<&str> = manifest
                    .platforms
                    .iter()
                    .map(|p| p.platform.tag())
                    .collect();
                problems.push(format!(
                    "it carries no runtime for {platform} (it has {})",
                    carried.join(", ")
                ));
                BTreeSet::new()
            }
        },
        None => BTreeSet::new(),
    };
    let expected: BTreeMap<&str, &manifest::Member> = manifest
        .members
        .iter()
        .map(|m| (m.path.as_str(), m))
        .collect();
    let mut seen = BTreeSet::new();
    for index in 1..archive.len() {
        let mut entry = match archive.by_index(index) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("member {index} cannot be read: {e}"));
                continue;
            }
        };
        let name = entry.name().to_string();
        if !seen.insert(name.clone()) {
            problems.push(format!("member `{name}` is stored twice"));
            continue;
        }
        let Some(member) = expected.get(name.as_str()) else {
            problems.push(format!("member `{name}` is not in the manifest"));
            inspection.members.push(MemberCheck {
                path: name,
                size: None,
                sha256: None,
                verified: false,
                problem: Some("not in the manifest".into()),
            });
            continue;
        };
        let target = extract
            .filter(|_| wanted.contains(&name))
            .map(|(dir, _)| dir.join(&name));
        // (At most one byte past the recorded size is read: a member that inflates past it
        // (a zip bomb) is refused without filling the disk.)
        let problem = match hash_member(&mut (&mut entry).take(member.size + 1), target.as_deref())
        {
            Err(e) => Some(format!("cannot be read: {e}")),
            Ok((size, _)) if size != member.size => Some(format!(
                "has {size} bytes, the manifest says {}",
                member.size
            )),
            Ok((_, sha)) if !sha.eq_ignore_ascii_case(&member.sha256) => Some(format!(
                "has sha256 {sha}, the manifest says {}",
                member.sha256
            )),
            Ok(_) => None,
        };
        if let Some(p) = &problem {
            problems.push(format!("member `{name}` {p}"));
        }
        inspection.members.push(MemberCheck {
            path: name,
            size: Some(member.size),
            sha256: Some(member.sha256.clone()),
            verified: problem.is_none(),
            problem,
        });
    }
    for member in &manifest.members {
        if !seen.contains(&member.path) {
            problems.push(format!("member `{}` is missing", member.path));
            inspection.members.push(MemberCheck {
                path: member.path.clone(),
                size: Some(member.size),
                sha256: Some(member.sha256.clone()),
                verified: false,
                problem: Some("missing".into()),
            });
        }
    }
    inspection.manifest = Some(manifest);
    inspection.problems = problems;
    Ok(inspection)
}

/// The first member must be the manifest, in this format.
fn read_manifest<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
) -> Result<Manifest, String> {
    let mut first = archive
        .by_index(0)
        .map_err(|e| format!("its first member cannot be read: {e}"))?;
    if first.name() != MANIFEST {
        return Err(format!(
            "its first member is `{}`, not `{MANIFEST}`",
            first.name()
        ));
    }
    let mut text = Vec::new();
    first
        .read_to_end(&mut text)
        .map_err(|e| format!("member `{MANIFEST}` cannot be read: {e}"))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("member `{MANIFEST}` is not a valid manifest: {e}"))?;
    if !(1..=manifest::FORMAT).contains(&manifest.format) {
        return Err(format!(
            "member `{MANIFEST}` has format {}, this build reads formats 1 to {}",
            manifest.format,
            manifest::FORMAT
        ));
    }
    Ok(manifest)
}

/// The manifest against itself and the lock it carries.
fn check_manifest(manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let lock_sha = hex::encode(Sha256::digest(manifest.project.beep_lock.as_bytes()));
    if lock_sha != manifest.lock_sha256 {
        problems.push(format!(
            "member `{MANIFEST}`: its beep.lock has sha256 {lock_sha}, it says {}",
            manifest.lock_sha256
        ));
    }
    let lock = Lock::parse(Path::new("beep.lock"), &manifest.project.beep_lock);
    let mut paths = BTreeSet::new();
    for member in &manifest.members {
        if !is_safe_member_path(&member.path) {
            problems.push(format!("member `{}` has an unsafe path", member.path));
        }
        if !paths.insert(member.path.as_str()) {
            problems.push(format!("member `{}` is listed twice", member.path));
        }
    }
    for contents in &manifest.platforms {
        let runtime = manifest.member(&contents.runtime_member);
        match runtime {
            None => problems.push(format!(
                "member `{}` (the runtime for {}) is not listed",
                contents.runtime_member, contents.platform
            )),
            Some(m) if !m.sha256.eq_ignore_ascii_case(&contents.runtime.sha256) => {
                problems.push(format!(
                    "member `{}` is listed with sha256 {}, its catalog entry says {}",
                    m.path, m.sha256, contents.runtime.sha256
                ))
            }
            Some(_) => {}
        }
        if let Ok(lock) = &lock
            && let Some(locked) = lock.pinned()
            && contents.runtime.key() == locked.key
            && !contents.runtime.sha256.eq_ignore_ascii_case(&locked.sha256)
        {
            problems.push(format!(
                "member `{}` is recorded with sha256 {}, beep.lock says {}",
                contents.runtime_member, contents.runtime.sha256, locked.sha256
            ));
        }
        if let Some(uv) = &contents.uv
            && (manifest.member(uv).is_none() || !uv.starts_with("tools/"))
        {
            problems.push(format!(
                "member `{uv}` (uv for {}) is not listed under tools/",
                contents.platform
            ));
        }
        for wheel in &contents.wheels {
            match (manifest.member(wheel), &lock) {
                (None, _) => problems.push(format!("member `{wheel}` is not listed")),
                (Some(m), Ok(lock)) => {
                    let file = wheel.rsplit('/').next().unwrap_or(wheel);
                    if !lock.has_wheel(file, &m.sha256) {
                        problems.push(format!(
                            "member `{wheel}` has sha256 {} which beep.lock does not list",
                            m.sha256
                        ));
                    }
                }
                (Some(_), Err(_)) => {}
            }
        }
    }
    if let Err(e) = lock {
        problems.push(format!("member `{MANIFEST}`: {e}"));
    }
    problems
}

/// Size and sha256 of one member, copied to `target` on the way when given.
fn hash_member(entry: &mut impl Read, target: Option<&Path>) -> std::io::Result<(u64, String)> {
    let mut out = match target {
        Some(path) => {
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            Some(std::io::BufWriter::new(fs_err::File::create(path)?))
        }
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 18];
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(out) = &mut out {
            out.write_all(&buf[..n])?;
        }
        size += n as u64;
    }
    if let Some(mut out) = out {
        out.flush()?;
    }
    Ok((size, hex::encode(hasher.finalize())))
}
