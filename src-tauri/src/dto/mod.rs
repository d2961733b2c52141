//! What crosses the IPC boundary: plain, typed copies of the core's values.

pub mod backends;
pub mod environments;
pub mod projects;
pub mod runtimes;
pub mod settings;
