//! POST /v1/score: score one login attempt, from memory, on the critical path.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::ApiError;
use super::request::{self, AttemptDto};
use super::{body, AppState};
use crate::clock;
use crate::event::{Assessment, Reason};

#[derive(Serialize)]
pub struct ScoreResponse<'a> {
    pub attempt_id: &'a str,
    pub decision: &'static str,
    pub risk: f64,
    pub reasons: &'a [Reason],
    pub history: &'static str,
    pub ruleset: &'a str,
}

impl<'a> ScoreResponse<'a> {
    pub fn new(attempt_id: &'a str, assessment: &'a Assessment) -> Self {
        ScoreResponse {
            attempt_id,
            decision: assessment.decision.as_str(),
            risk: assessment.risk,
            reasons: &assessment.reasons,
            history: assessment.history.as_str(),
            ruleset: &assessment.ruleset,
        }
    }
}

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read(&req, payload, state.limits.json_body_bytes_max).await?;
    let dto: AttemptDto = body::json(&bytes)?;
    let now_ms = clock::now_ms();
    let attempt = dto.into_attempt(&state.enricher, state.limits.signals_max, now_ms)?;
    request::check_not_far_future(attempt.timestamp_ms, now_ms)?;
    if !attempt.signals.is_empty() {
        let live = state.scoring.live();
        let known = &live.ruleset().factors.signals.weights;
        let unknown = attempt
            .signals
            .iter()
            .filter(|s| !known.contains_key(&s.name))
            .count();
        state.metrics.signals_unknown.inc_by(unknown as u64);
    }

    let scored = state
        .router
        .score(attempt)
        .await
        .map_err(|e| ApiError::from_route(e, state.retry_after_s))?;
    if let Some(ticket) = scored.ticket {
        ticket
            .wait()
            .await
            .map_err(|e| ApiError::from_log(e, state.retry_after_s))?;
    }
    if scored.duplicate {
        state.metrics.duplicates.with_label_values(&["score"]).inc();
    } else {
        let live = scored.assessment.decision.as_str();
        state.metrics.decisions.with_label_values(&[live]).inc();
        if let Some(candidate) = scored.shadow {
            state
                .metrics
                .shadow_decisions
                .with_label_values(&[live, candidate.as_str()])
                .inc();
        }
    }

    Ok(HttpResponse::Ok().json(ScoreResponse::new(&scored.attempt_id, &scored.assessment)))
}
