//! POST /v1/outcomes: how a scored login ended. 202 only once durable.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::request::{self, OutcomeDto};
use super::{body, AppState};
use crate::clock;
use crate::partition::{PartitionError, RouteError};

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read(&req, payload, state.limits.json_body_bytes_max).await?;
    let dto: OutcomeDto = body::json(&bytes)?;
    let now_ms = clock::now_ms();
    let report = dto.into_report(now_ms)?;
    request::check_not_far_future(report.timestamp_ms, now_ms)?;
    let (ticket, duplicate) = state.router.outcome(report).await.map_err(|err| {
        if matches!(
            err,
            RouteError::Partition(PartitionError::UnknownAttempt(_))
        ) {
            state.metrics.outcomes_unknown.inc();
        }
        ApiError::from_route(err, state.retry_after_s)
    })?;
    ticket
        .wait()
        .await
        .map_err(|e| ApiError::from_log(e, state.retry_after_s))?;
    if duplicate {
        state
            .metrics
            .duplicates
            .with_label_values(&["outcome"])
            .inc();
    } else {
        state
            .metrics
            .events_appended
            .with_label_values(&["outcome"])
            .inc();
    }
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "accepted": true })))
}
