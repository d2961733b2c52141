//! The OpenAPI document of the host API's HTTP routes (`GET /openapi.json`).
//!
//! Written out by hand next to the routes in `http.rs`; a test runs schemathesis
//! against it to prove the two agree.

use serde_json::{Value, json};

fn error_responses(codes: &[u16]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    for code in codes {
        let description = match code {
            400 => "Invalid input (bad name, malformed body)",
            401 => "Missing or wrong token",
            403 => "Non-local Host header or an Origin header",
            404 => "Not found",
            405 => "Method not allowed",
            409 => "Name taken, or busy (locked, in use)",
            413 => "Body too large",
            415 => "Unsupported media type",
            422 => "The operation ran and failed",
            _ => "Error",
        };
        map.insert(
            code.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    map
}

fn op(summary: &str, ok_code: u16, ok: Value, errors: &[u16], extra: Value) -> Value {
    let mut responses = error_responses(errors);
    responses.insert(ok_code.to_string(), ok);
    let mut operation = json!({
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": responses,
    });
    if let (Some(o), Some(e)) = (operation.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    operation
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn body(schema: Value) -> Value {
    json!({"requestBody": {"required": true, "content": {"application/json": {"schema": schema}}}})
}

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "description": "Environment name",
           "schema": {"type": "string"}})
}

/// The document for a server on `port`.
pub fn document(port: u16) -> Value {
    let common = [400, 401, 403, 405];
    let nullable_string = json!({"type": "string", "nullable": true});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Beep Python Host API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Environment, runtime and backend management on loopback. Every request needs `Authorization: Bearer <token>` (the token is in `<state>/host.json`); requests with an Origin header or a Host other than 127.0.0.1/localhost are refused."
        },
        "servers": [{"url": format!("http://127.0.0.1:{port}")}],
        "paths": {
            "/openapi.json": {"get": op("This document", 200, json_ok("The OpenAPI document", json!({"type": "object"})), &[401, 403, 405], json!({}))},
            "/venv/create": {"post": op(
                "Create an environment", 200,
                json_ok("Created", json!({"type": "object", "required": ["path", "success"],
                    "properties": {"path": {"type": "string"}, "success": {"type": "boolean"}}})),
                &[400, 401, 403, 404, 405, 409, 413, 422],
                body(json!({"$ref": "#/components/schemas/CreateRequest"})))},
            "/venv/list": {"get": op("List environments", 200,
                json_ok("Environments", json!({"type": "array", "items": {"$ref": "#/components/schemas/Environment"}})),
                &common, json!({}))},
            "/venv/{name}": {
                "get": op("An environment in detail", 200,
                    json_ok("The environment", json!({"$ref": "#/components/schemas/EnvironmentStatus"})),
                    &[400, 401, 403, 404, 405], json!({"parameters": [name_param()]})),
                "delete": op("Delete an environment", 200,
                    json_ok("Deleted", json!({"$ref": "#/components/schemas/Success"})),
                    &[400, 401, 403, 404, 405, 409, 422],
                    json!({"parameters": [name_param(), {"name": "force", "in": "query", "required": false,
                        "description": "Stop backends running in it first", "schema": {"type": "boolean"}}]}))
            },
            "/venv/{name}/packages": {"post": op("Install packages", 200,
                json_ok("Installed", json!({"type": "object", "required": ["success", "output"],
                    "properties": {"success": {"type": "boolean"}, "output": {"type": "array", "items": {"type": "string"}}}})),
                &[400, 401, 403, 404, 405, 409, 413, 422],
                {
                    let mut e = body(json!({"type": "object", "required": ["requirements"], "additionalProperties": false,
                        "properties": {"requirements": {"type": "array", "minItems": 1, "items": {"type": "string"}}}}));
                    e["parameters"] = json!([name_param()]);
                    e
                })},
            "/runtimes": {"get": op("List installed and adopted runtimes", 200,
                json_ok("Runtimes", json!({"type": "array", "items": {"$ref": "#/components/schemas/Runtime"}})),
                &common, json!({}))},
            "/runtimes/install": {"post": op("Install a runtime; progress as server-sent events", 200,
                json!({"description": "Events `progress` (phase, bytes...), then `done` (the runtime) or `error` ({code, message})",
                       "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
                &[400, 401, 403, 404, 405, 413],
                body(json!({"type": "object", "required": ["version"], "additionalProperties": false,
                    "properties": {"version": {"type": "string", "description": "3.12, 3.12.7 or a catalog key"}}})))},
            "/backends": {
                "post": op("Start a backend", 201,
                    json_ok("Started", json!({"$ref": "#/components/schemas/Backend"})),
                    &[400, 401, 403, 404, 405, 409, 413, 422],
                    body(json!({"type": "object", "required": ["transport"], "additionalProperties": false,
                        "properties": {"env": {"type": "string"},
                                       "runtime": {"type": "string", "description": "Run on this runtime (key, version or interpreter path) instead of an environment; not with env"},
                                       "transport": {"type": "string", "enum": ["http", "pipe", "rpc"]},
                                       "restart": {"type": "string", "enum": ["never", "on-failure"]}}}))),
                "get": op("List backends", 200,
                    json_ok("Backends", json!({"type": "array", "items": {"$ref": "#/components/schemas/Backend"}})),
                    &common, json!({}))
            },
            "/backends/{id}": {"delete": op("Stop a backend", 200,
                json_ok("Stopped", json!({"$ref": "#/components/schemas/Success"})),
                &[400, 401, 403, 404, 405, 409, 422],
                json!({"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]}))},
            "/projects/up": {"post": op("Bring a project folder to what its beep.toml and beep.lock declare", 200,
                json_ok("What changed", json!({"type": "object"})),
                &[400, 401, 403, 404, 405, 409, 413, 422],
                body(json!({"type": "object", "required": ["dir"], "additionalProperties": false,
                    "properties": {"dir": {"type": "string", "description": "The project folder (absolute)"},
                                   "bundle": {"type": "string", "description": "An offline bundle (absolute) to bring the project up from, without the network; verified before anything is written"}}})))},
            "/bundles": {"post": op("Write an offline bundle of a project folder (runtime archives, locked wheels, manifest)", 200,
                json_ok("The bundle written", json!({"type": "object", "required": ["path", "size", "manifest"],
                    "properties": {"path": {"type": "string"}, "size": {"type": "integer"}, "manifest": {"type": "object"}}})),
                &[400, 401, 403, 404, 405, 413, 422],
                body(json!({"type": "object", "required": ["dir", "output"], "additionalProperties": false,
                    "properties": {"dir": {"type": "string", "description": "The project folder with beep.toml and beep.lock (absolute)"},
                                   "output": {"type": "string", "description": "The zip to write (absolute; replaced when it exists)"},
                                   "platforms": {"type": "array", "items": {"type": "string", "enum": ["linux-x86_64-gnu", "windows-x86_64", "macos-aarch64"]},
                                                 "description": "Platforms to carry; empty is this one"}}})))},
            "/projects/down": {"post": op("Stop a project's backends", 200,
                json_ok("The backends stopped", json!({"type": "array", "items": {"type": "object"}})),
                &[400, 401, 403, 404, 405, 413, 422],
                body(json!({"type": "object", "required": ["dir"], "additionalProperties": false,
                    "properties": {"dir": {"type": "string", "description": "The project folder (absolute)"}}})))},
            "/projects/status": {"get": op("A project's declaration beside what is installed and running", 200,
                json_ok("The status", json!({"type": "object"})),
                &[400, 401, 403, 404, 405, 422],
                json!({"parameters": [{"name": "dir", "in": "query", "required": true,
                    "description": "The project folder (absolute)", "schema": {"type": "string"}}]}))}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": ["invalid", "unauthorized", "forbidden", "not_found", "conflict", "failed", "cancelled", "internal"]},
                    "message": {"type": "string"}}},
                "Success": {"type": "object", "required": ["success"], "properties": {"success": {"type": "boolean"}}},
                "CreateRequest": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string", "description": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
                    "runtime": {"type": "string"}, "providerName": {"type": "string"}, "modelId": {"type": "string"},
                    "packages": {"type": "array", "items": {"type": "string"}}}},
                "Environment": {"type": "object", "required": ["name", "path", "packages", "healthy"], "properties": {
                    "name": {"type": "string"}, "path": {"type": "string"}, "python": {"type": "string"},
                    "python_version": nullable_string, "runtime": nullable_string, "home": nullable_string,
                    "installer": nullable_string, "provider": nullable_string, "model_id": nullable_string,
                    "profile": nullable_string, "packages": {"type": "integer"}, "created": nullable_string,
                    "healthy": {"type": "boolean"}}},
                "EnvironmentStatus": {"allOf": [{"$ref": "#/components/schemas/Environment"}, {"type": "object",
                    "required": ["installed", "size_bytes", "backends"], "properties": {
                        "installed": {"type": "array", "items": {"type": "object"}},
                        "size_bytes": {"type": "integer"},
                        "pyvenv_cfg": {"type": "object"},
                        "backends": {"type": "array", "items": {"type": "object"}}}}]},
                "Runtime": {"type": "object", "required": ["key", "version", "path", "python", "kind", "default"], "properties": {
                    "key": {"type": "string"}, "version": {"type": "string"}, "path": {"type": "string"},
                    "python": {"type": "string"}, "kind": {"type": "string", "enum": ["managed", "adopted"]},
                    "default": {"type": "boolean"}}},
                "Backend": {"type": "object", "required": ["id", "env", "transport", "state"], "properties": {
                    "id": {"type": "string"}, "env": {"type": "string"}, "transport": {"type": "string"},
                    "runtime": {"type": "object", "description": "The runtime it runs on, when not in an environment (env is then empty)",
                                "properties": {"key": {"type": "string"}, "python": {"type": "string"}}},
                    "address": nullable_string, "state": {"type": "string"},
                    "pid": {"type": "integer", "nullable": true}, "cpu_percent": {"type": "number"},
                    "rss_bytes": {"type": "integer"}, "uptime_secs": {"type": "integer"},
                    "restarts": {"type": "integer"}}}
            }
        }
    })
}
