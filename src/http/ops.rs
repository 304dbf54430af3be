//! GET /healthz, /readyz, /metrics.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready once every partition has caught up with its log, and while the
/// log can be written.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let readiness = &state.readiness;
    if !state.durability.is_healthy() {
        return Err(ApiError::Unavailable {
            message: "the event log cannot be written (a durability barrier failed)".into(),
            retry_after_s: state.retry_after_s,
        });
    }
    if !state.router.all_running() {
        return Err(ApiError::Unavailable {
            message: "a partition has stopped".into(),
            retry_after_s: state.retry_after_s,
        });
    }
    if !readiness.all_caught_up() {
        return Err(ApiError::Unavailable {
            message: format!(
                "{} of {} partitions have caught up with their log",
                readiness.caught_up(),
                readiness.partitions()
            ),
            retry_after_s: state.retry_after_s,
        });
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "partitions": readiness.partitions() })))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
