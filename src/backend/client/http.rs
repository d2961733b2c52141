//! The HTTP transport: `POST /v1/<op>` with a JSON body and `Authorization: Bearer`,
//! over one keep-alive connection pool on loopback.

use reqwest::StatusCode;
use serde_json::Value;

use super::value::ReplyError;
use super::{BackendClient, Error, Op, Reply};
use crate::backend::spec::Transport;

/// A client of an HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    base: String,
    address: String,
    authorization: String,
}

impl HttpClient {
    /// A client for `127.0.0.1:PORT`; the first request (`info`) checks the token.
    pub async fn connect(address: &str, token: &str) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            // Below the server's idle keep-alive timeout (60 s): a pooled connection is
            // dropped here before the server closes it under a request.
            .pool_idle_timeout(std::time::Duration::from_secs(50))
            .http1_only()
            .build()
            .map_err(|source| Error::Connect {
                address: address.to_string(),
                source: Box::new(source),
            })?;
        let this = Self {
            client,
            base: format!("http://{address}/v1/"),
            address: address.to_string(),
            authorization: format!("Bearer {token}"),
        };
        this.request(Op::Info, None).await?;
        Ok(this)
    }
}

#[async_trait::async_trait]
impl BackendClient for HttpClient {
    fn transport(&self) -> Transport {
        Transport::Http
    }

    async fn request(&self, op: Op, session: Option<&str>) -> Result<Reply, Error> {
        let (name, mut fields) = op.into_parts();
        if let Some(session) = session {
            fields.insert("session".into(), Value::String(session.to_string()));
        }
        let url = format!("{}{}", self.base, name);
        let http = |source| Error::Http {
            op: name.clone(),
            url: url.clone(),
            source,
        };
        let body = serde_json::to_vec(&Value::Object(fields)).map_err(|e| Error::Protocol {
            address: self.address.clone(),
            message: e.to_string(),
        })?;
        let response = self
            .client
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Error::Unauthorized {
                address: self.address.clone(),
            });
        }
        let bytes = response.bytes().await.map_err(http)?;
        let object = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(object)) => object,
            _ => {
                return Err(Error::Protocol {
                    address: self.address.clone(),
                    message: format!(
                        "HTTP {status} with a body that is not a JSON object: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    ),
                });
            }
        };
        match Reply::from_json(object) {
            Ok(reply) if status.is_success() => Ok(reply),
            Ok(_) => Err(Error::Protocol {
                address: self.address.clone(),
                message: format!("HTTP {status} without an error"),
            }),
            Err(ReplyError::Remote(remote)) => Err(Error::Remote(remote)),
            Err(ReplyError::Malformed(message)) => Err(Error::Protocol {
                address: self.address.clone(),
                message,
            }),
        }
    }
}
