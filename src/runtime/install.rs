//! Installing managed runtimes.
use super::{Error, Runtime};
use crate::Paths;
#[derive(Debug, Clone, Default)]
pub struct InstallOptions;
pub fn list_managed(_paths: &Paths) -> Result<Vec<Runtime>, Error> {
    Ok(Vec::new())
}
pub fn remove_managed(_paths: &Paths, _runtime: &Runtime) -> Result<(), Error> {
    Ok(())
}
