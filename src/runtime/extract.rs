//! Archive extraction.
#[derive(Debug, thiserror::Error)]
pub enum Error {}
