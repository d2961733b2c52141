//! The gRPC transport (placeholder until the .proto lands).

use super::{BackendClient, Error, Op, Reply};
use crate::backend::spec::Transport;

#[derive(Debug)]
pub struct GrpcClient {
    address: String,
}

impl GrpcClient {
    pub async fn connect(address: &str, _token: &str) -> Result<Self, Error> {
        Ok(Self {
            address: address.to_string(),
        })
    }
}

#[async_trait::async_trait]
impl BackendClient for GrpcClient {
    fn transport(&self) -> Transport {
        Transport::Rpc
    }
    async fn request(&self, _op: Op, _session: Option<&str>) -> Result<Reply, Error> {
        Err(Error::Closed {
            address: self.address.clone(),
        })
    }
}
