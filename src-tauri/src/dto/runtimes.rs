use serde::{Deserialize, Serialize};

use beep_host::runtime::{CatalogEntry, Runtime, RuntimeKind};

/// An installed (managed or embedded) or adopted interpreter.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct RuntimeRow {
    pub key: String,
    pub version: String,
    /// `managed`, `adopted` or `embedded` (python.org's Windows embeddable package).
    pub kind: String,
    pub path: String,
    pub python: String,
    pub default: bool,
}

impl From<Runtime> for RuntimeRow {
    fn from(r: Runtime) -> Self {
        Self {
            key: r.key,
            version: r.version,
            kind: match r.kind {
                RuntimeKind::Managed => "managed",
                RuntimeKind::Adopted => "adopted",
                RuntimeKind::Embedded => "embedded",
            }
            .to_string(),
            path: r.path.display().to_string(),
            python: r.python.display().to_string(),
            default: r.default,
        }
    }
}

/// A catalog entry for this platform.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct AvailableRuntime {
    pub key: String,
    pub version: String,
    pub build: String,
    pub file_name: String,
    pub installed: bool,
}

impl AvailableRuntime {
    pub fn new(entry: &CatalogEntry, installed: &[Runtime]) -> Self {
        let key = entry.key();
        Self {
            installed: installed.iter().any(|r| r.key == key),
            key,
            version: entry.version.clone(),
            build: entry.build.clone(),
            file_name: entry.file_name(),
        }
    }
}
