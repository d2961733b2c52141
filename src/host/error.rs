//! Errors as the host API shows them: `{code, message}`; the code is the core's
//! [`ErrorCode`](crate::ErrorCode) plus the API's own `unauthorized` and `forbidden`.

use serde::Serialize;

use crate::{backend, runtime, venv};

/// What kind of failure; the HTTP status and gRPC code follow from it. The core's codes
/// plus the two only the API's gate produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiCode {
    /// Bad input: a bad name, a malformed request (400).
    Invalid,
    /// Missing or wrong token (401).
    Unauthorized,
    /// A request from a place that may not call (non-local Host, an Origin header) (403).
    Forbidden,
    /// No such environment, runtime or backend (404).
    NotFound,
    /// The name is taken, or the thing is busy (locked, in use) (409).
    Conflict,
    /// The operation ran and failed (the installer's own error, a backend that did not start) (422).
    Failed,
    /// The operation was cancelled.
    Cancelled,
    /// Something broke inside the host (500).
    Internal,
}

/// An error with its code and a message that names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: ApiCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self.code {
            ApiCode::Invalid => 400,
            ApiCode::Unauthorized => 401,
            ApiCode::Forbidden => 403,
            ApiCode::NotFound => 404,
            ApiCode::Conflict | ApiCode::Cancelled => 409,
            ApiCode::Failed => 422,
            ApiCode::Internal => 500,
        }
    }

    /// The gRPC status for this error.
    pub fn to_grpc(&self) -> tonic::Status {
        let code = match self.code {
            ApiCode::Invalid => tonic::Code::InvalidArgument,
            ApiCode::Unauthorized => tonic::Code::Unauthenticated,
            ApiCode::Forbidden => tonic::Code::PermissionDenied,
            ApiCode::NotFound => tonic::Code::NotFound,
            ApiCode::Conflict => tonic::Code::AlreadyExists,
            ApiCode::Failed => tonic::Code::Aborted,
            ApiCode::Cancelled => tonic::Code::Cancelled,
            ApiCode::Internal => tonic::Code::Internal,
        };
        tonic::Status::new(code, self.message.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::ErrorCode> for ApiCode {
    fn from(code: crate::ErrorCode) -> Self {
        use crate::ErrorCode as C;
        match code {
            C::Invalid => Self::Invalid,
            C::NotFound => Self::NotFound,
            C::Conflict => Self::Conflict,
            C::Cancelled => Self::Cancelled,
            C::Failed => Self::Failed,
            C::Internal => Self::Internal,
        }
    }
}

impl ApiError {
    /// A core error: its code, and its text with its causes.
    pub fn from_core(code: crate::ErrorCode, error: &dyn std::error::Error) -> Self {
        Self::new(code.into(), crate::error::chain(error))
    }
}

macro_rules! from_core {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                Self::from_core(e.code(), &e)
            }
        })*
    };
}

from_core!(
    crate::Error,
    venv::Error,
    venv::name::Error,
    runtime::Error,
    backend::Error,
    crate::project::Error,
    crate::bundle::Error,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each core error's code crosses unchanged: the host and the app once disagreed
    /// (removing an adopted runtime was Conflict here and Invalid in the app).
    #[test]
    fn core_codes_map_to_http_and_grpc() {
        let adopted: ApiError = runtime::Error::RemoveAdopted { key: "k".into() }.into();
        assert_eq!((adopted.code, adopted.status()), (ApiCode::Conflict, 409));
        assert_eq!(adopted.to_grpc().code(), tonic::Code::AlreadyExists);
        let lock: ApiError = runtime::Error::Lock(crate::lock::Error::Busy {
            what: "runtime".into(),
            path: "/l".into(),
        })
        .into();
        assert_eq!(lock.status(), 409);
        let exists: ApiError = venv::Error::Exists {
            name: "a".into(),
            path: "/e/a".into(),
        }
        .into();
        assert_eq!(exists.status(), 409);
        let no_grpc: ApiError = backend::Error::GrpcMissing {
            env: "a".into(),
            path: "/e/a".into(),
        }
        .into();
        assert_eq!(
            (no_grpc.status(), no_grpc.to_grpc().code()),
            (400, tonic::Code::InvalidArgument)
        );
        let cancelled: ApiError = runtime::Error::Cancelled.into();
        assert_eq!(cancelled.to_grpc().code(), tonic::Code::Cancelled);
        let missing: ApiError = venv::Error::NotFound { name: "x".into() }.into();
        assert_eq!(
            (missing.status(), missing.to_grpc().code()),
            (404, tonic::Code::NotFound)
        );
        for code in [
            crate::ErrorCode::Invalid,
            crate::ErrorCode::NotFound,
            crate::ErrorCode::Conflict,
            crate::ErrorCode::Cancelled,
            crate::ErrorCode::Failed,
            crate::ErrorCode::Internal,
        ] {
            let api = ApiError::new(code.into(), "m");
            // The wire name of the code is the core's.
            assert_eq!(
                serde_json::to_value(api.code).unwrap(),
                serde_json::to_value(code).unwrap()
            );
        }
    }
}
