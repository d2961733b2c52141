//! The host API over gRPC (tonic): `VenvService` and `BackendService` from
//! `python/beep_backend/host.proto`, with the token in `authorization` metadata.

use std::sync::Arc;
use tonic::{Request, Response, Status};

use super::{ApiCode, ApiError, CreateRequest, Host, StartRequest};
use crate::backend::BackendStatus;
use crate::venv::Environment;

/// The generated messages, services and clients.
pub mod proto {
    tonic::include_proto!("beep.host.v1");
}

use proto::backend_service_server::{BackendService, BackendServiceServer};
use proto::venv_service_server::{VenvService, VenvServiceServer};

/// A tonic server with both services behind the token check.
pub fn server(host: Arc<Host>) -> tonic::transport::server::Router {
    let token = host.token().to_string();
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(super::http::bearer_token)
            .unwrap_or("");
        if super::http::constant_time_eq(given.as_bytes(), token.as_bytes()) {
            Ok(request)
        } else {
            Err(ApiError::new(
                ApiCode::Unauthorized,
                "Missing or wrong token in `authorization` metadata",
            )
            .to_grpc())
        }
    };
    let api = Api(host);
    tonic::transport::Server::builder()
        .add_service(VenvServiceServer::with_interceptor(
            api.clone(),
            check.clone(),
        ))
        .add_service(BackendServiceServer::with_interceptor(api, check))
}

#[derive(Clone)]
struct Api(Arc<Host>);

fn grpc(e: ApiError) -> Status {
    e.to_grpc()
}

fn environment(env: Environment) -> proto::Environment {
    proto::Environment {
        name: env.name,
        path: env.path.display().to_string(),
        python_version: env.python_version.unwrap_or_default(),
        runtime: env.runtime.unwrap_or_default(),
        packages: env.packages as u64,
        created: env.created.unwrap_or_default(),
        healthy: env.healthy,
        provider: env.provider.unwrap_or_default(),
        model_id: env.model_id.unwrap_or_default(),
    }
}

fn backend(b: BackendStatus) -> proto::Backend {
    proto::Backend {
        id: b.id.to_string(),
        env: b.env,
        transport: b.transport.as_str().to_string(),
        address: b.address.unwrap_or_default(),
        state: b.state.as_str().to_string(),
        pid: b.pid.unwrap_or(0),
        cpu_percent: b.cpu_percent,
        rss_bytes: b.rss_bytes,
        uptime_secs: b.uptime_secs,
        restarts: b.restarts,
        runtime: b.runtime.map(|r| r.key).unwrap_or_default(),
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[tonic::async_trait]
impl VenvService for Api {
    async fn create_environment(
        &self,
        request: Request<proto::CreateEnvRequest>,
    ) -> Result<Response<proto::CreateEnvResponse>, Status> {
        let r = request.into_inner();
        let env = self
            .0
            .create_env(CreateRequest {
                name: r.name,
                runtime: non_empty(r.runtime),
                provider_name: non_empty(r.provider_name),
                model_id: non_empty(r.model_id),
                packages: r.packages,
            })
            .await
            .map_err(grpc)?;
        Ok(Response::new(proto::CreateEnvResponse {
            path: env.path.display().to_string(),
            success: true,
        }))
    }

    async fn delete_environment(
        &self,
        request: Request<proto::DeleteEnvRequest>,
    ) -> Result<Response<proto::DeleteEnvResponse>, Status> {
        let r = request.into_inner();
        self.0.delete_env(&r.name, r.force).await.map_err(grpc)?;
        Ok(Response::new(proto::DeleteEnvResponse { success: true }))
    }

    async fn list_environments(
        &self,
        _request: Request<proto::ListEnvRequest>,
    ) -> Result<Response<proto::ListEnvResponse>, Status> {
        let environments = self
            .0
            .list_envs()
            .map_err(grpc)?
            .into_iter()
            .map(environment)
            .collect();
        Ok(Response::new(proto::ListEnvResponse { environments }))
    }

    async fn get_environment(
        &self,
        request: Request<proto::GetEnvRequest>,
    ) -> Result<Response<proto::Environment>, Status> {
        let status = self.0.get_env(&request.into_inner().name).map_err(grpc)?;
        Ok(Response::new(environment(status.environment)))
    }

    async fn install_packages(
        &self,
        request: Request<proto::InstallPackagesRequest>,
    ) -> Result<Response<proto::InstallPackagesResponse>, Status> {
        let r = request.into_inner();
        let output = self
            .0
            .install_packages(&r.name, r.requirements)
            .await
            .map_err(grpc)?;
        Ok(Response::new(proto::InstallPackagesResponse {
            success: true,
            output,
        }))
    }
}

#[tonic::async_trait]
impl BackendService for Api {
    async fn start(
        &self,
        request: Request<proto::StartBackendRequest>,
    ) -> Result<Response<proto::Backend>, Status> {
        let r = request.into_inner();
        let status = self
            .0
            .start_backend(StartRequest {
                env: non_empty(r.env),
                runtime: non_empty(r.runtime),
                transport: r.transport,
                restart: non_empty(r.restart),
            })
            .await
            .map_err(grpc)?;
        Ok(Response::new(backend(status)))
    }

    async fn stop(
        &self,
        request: Request<proto::StopBackendRequest>,
    ) -> Result<Response<proto::StopBackendResponse>, Status> {
        self.0
            .stop_backend(&request.into_inner().id)
            .await
            .map_err(grpc)?;
        Ok(Response::new(proto::StopBackendResponse { success: true }))
    }

    async fn list(
        &self,
        _request: Request<proto::ListBackendsRequest>,
    ) -> Result<Response<proto::ListBackendsResponse>, Status> {
        let backends = self.0.backends().into_iter().map(backend).collect();
        Ok(Response::new(proto::ListBackendsResponse { backends }))
    }
}
