//! The host API over HTTP (axum): JSON in and out, `{code, message}` errors, a bearer
//! token on every request, and no calls from web pages (Origin) or foreign names (Host).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;

use super::{
    ApiCode, ApiError, BundleRequest, CreateRequest, Host, ProjectRequest, ProjectUpRequest,
    StartRequest,
};
use crate::runtime::InstallOptions;
use crate::{Progress, Reporter};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
struct AppState {
    host: Arc<Host>,
    port: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

/// `Json<T>` whose rejections are `{code, message}`: status 400, or 413 for a body over
/// [`MAX_BODY`].
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                ApiCode::Invalid,
                "Invalid request: expected `Content-Type: application/json`",
            )
            .into_response()),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(ApiError::new(
                    ApiCode::Invalid,
                    format!("Request body too large (limit {MAX_BODY} bytes)"),
                )),
            )
                .into_response()),
            Err(e) => Err(ApiError::new(
                ApiCode::Invalid,
                format!("Invalid request body: {}", e.body_text()),
            )
            .into_response()),
        }
    }
}

/// A path parameter; a bad one is a `{code, message}` 400.
struct Param(String);

impl<S: Send + Sync> FromRequestParts<S> for Param {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::new(
                ApiCode::Invalid,
                format!("Invalid path: {}", e.body_text()),
            )),
        }
    }
}

/// The router with every route, behind the guard.
pub fn router(host: Arc<Host>, port: u16) -> Router {
    let state = AppState { host, port };
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/venv/create", post(create_env))
        .route("/venv/list", get(list_envs))
        .route("/venv/{name}", get(get_env).delete(delete_env))
        .route("/venv/{name}/packages", post(install_packages))
        .route("/runtimes", get(list_runtimes))
        .route("/runtimes/install", post(install_runtime))
        .route("/backends", post(start_backend).get(list_backends))
        .route("/backends/{id}", delete(stop_backend))
        .route("/projects/up", post(project_up))
        .route("/bundles", post(write_bundle))
        .route("/projects/down", post(project_down))
        .route("/projects/status", get(project_status))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Refuse foreign Hosts, any Origin, and a missing or wrong token, before any handler runs.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(e) = check(&state, request.headers()) {
        return e.into_response();
    }
    let mut response = next.run(request).await;
    // Method-not-allowed and other framework answers get the same error shape.
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response.headers().get(header::CONTENT_TYPE).is_none()
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = (
            StatusCode::METHOD_NOT_ALLOWED,
            Json(ApiError::new(
                ApiCode::Invalid,
                "Method not allowed on this route",
            )),
        )
            .into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    response
}

fn check(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let allowed = [
        format!("127.0.0.1:{}", state.port),
        format!("localhost:{}", state.port),
    ];
    if !allowed.iter().any(|a| a == host) {
        return Err(ApiError::new(
            ApiCode::Forbidden,
            format!(
                "Refused Host `{host}`: the host API answers only 127.0.0.1:{} or localhost:{}",
                state.port, state.port
            ),
        ));
    }
    if headers.contains_key(header::ORIGIN) {
        return Err(ApiError::new(
            ApiCode::Forbidden,
            "Refused a request with an Origin header: web pages may not call the host API",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    if !constant_time_eq(token.as_bytes(), state.host.token().as_bytes()) {
        return Err(ApiError::new(
            ApiCode::Unauthorized,
            "Missing or wrong token: send `Authorization: Bearer <token>` (see `<state>/host.json`)",
        ));
    }
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 7235), so `bearer` and `BEARER` work too.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Compare without leaking where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError::new(ApiCode::NotFound, "No such route; see GET /openapi.json")
}

async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(super::openapi::document(state.port))
}

#[derive(Serialize)]
struct Created {
    path: String,
    success: bool,
}

async fn create_env(
    State(s): State<AppState>,
    Body(request): Body<CreateRequest>,
) -> Result<Json<Created>, ApiError> {
    let env = s.host.create_env(request).await?;
    Ok(Json(Created {
        path: env.path.display().to_string(),
        success: true,
    }))
}

async fn project_up(
    State(s): State<AppState>,
    Body(request): Body<ProjectUpRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(s.host.project_up(request).await?).into_response())
}

async fn write_bundle(
    State(s): State<AppState>,
    Body(request): Body<BundleRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(s.host.write_bundle(request).await?).into_response())
}

async fn project_down(
    State(s): State<AppState>,
    Body(request): Body<ProjectRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(s.host.project_down(request).await?).into_response())
}

async fn project_status(
    State(s): State<AppState>,
    query: Result<Query<ProjectRequest>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(request) = query.map_err(|e| {
        ApiError::new(
            ApiCode::Invalid,
            format!("Invalid query: {}", e.body_text()),
        )
    })?;
    Ok(Json(s.host.project_status(request).await?).into_response())
}

async fn list_envs(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.host.list_envs()?).into_response())
}

async fn get_env(State(s): State<AppState>, Param(name): Param) -> Result<Response, ApiError> {
    Ok(Json(s.host.get_env(&name)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

#[derive(Serialize)]
struct Success {
    success: bool,
}

async fn delete_env(
    State(s): State<AppState>,
    Param(name): Param,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Success>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            ApiCode::Invalid,
            format!("Invalid query: {}", e.body_text()),
        )
    })?;
    s.host.delete_env(&name, query.force).await?;
    Ok(Json(Success { success: true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallRequest {
    requirements: Vec<String>,
}

#[derive(Serialize)]
struct Installed {
    success: bool,
    output: Vec<String>,
}

async fn install_packages(
    State(s): State<AppState>,
    Param(name): Param,
    Body(request): Body<InstallRequest>,
) -> Result<Json<Installed>, ApiError> {
    let output = s.host.install_packages(&name, request.requirements).await?;
    Ok(Json(Installed {
        success: true,
        output,
    }))
}

async fn list_runtimes(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.host.runtimes()?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeInstallRequest {
    /// `3.12`, `3.12.7` or a catalog key.
    version: String,
}

/// Sends progress into the event stream.
struct StreamReporter(tokio::sync::mpsc::UnboundedSender<Event>);

impl Reporter for StreamReporter {
    fn report(&self, progress: Progress) {
        if let Ok(event) = Event::default().event("progress").json_data(&progress) {
            let _ = self.0.send(event);
        }
    }
}

/// Cancels the install when the client goes away (the stream is dropped).
struct CancelOnDrop(tokio_util::sync::CancellationToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Install a runtime; progress as server-sent events (`progress`, then `done` or `error`).
async fn install_runtime(
    State(s): State<AppState>,
    Body(request): Body<RuntimeInstallRequest>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let runtimes = s.host.runtime_service();
    // Resolve first so a bad request is a plain 400/404, not an event stream.
    let parsed = crate::runtime::InstallRequest::parse(&request.version)?;
    let platform = crate::runtime::platform::Platform::current();
    let catalog = runtimes.catalog().await?;
    if catalog.resolve(&parsed, &platform).is_none() {
        return Err(crate::runtime::Error::NoCatalogEntry {
            request: request.version,
            platform: platform.tag(),
        }
        .into());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let options = InstallOptions::default();
    let guard = CancelOnDrop(options.cancel.clone());
    tokio::spawn(async move {
        let reporter = StreamReporter(tx.clone());
        let result = runtimes
            .install(&request.version, &reporter, &options)
            .await;
        let event = match result {
            Ok(installed) => Event::default().event("done").json_data(&installed),
            Err(e) => Event::default().event("error").json_data(ApiError::from(e)),
        };
        if let Ok(event) = event {
            let _ = tx.send(event);
        }
    });
    let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|event| (Ok(event), (rx, guard)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn start_backend(
    State(s): State<AppState>,
    Body(request): Body<StartRequest>,
) -> Result<Response, ApiError> {
    let status = s.host.start_backend(request).await?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

async fn list_backends(State(s): State<AppState>) -> Response {
    Json(s.host.backends()).into_response()
}

async fn stop_backend(
    State(s): State<AppState>,
    Param(id): Param,
) -> Result<Json<Success>, ApiError> {
    s.host.stop_backend(&id).await?;
    Ok(Json(Success { success: true }))
}
