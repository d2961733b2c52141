//! Tauri commands, one file per domain: each one delegates to the core.

pub mod backends;
pub mod bundles;
pub mod calls;
pub mod environments;
pub mod projects;
pub mod runtimes;
pub mod settings;
