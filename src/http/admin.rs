//! /v1/admin/*: change the scoring rules without a restart, and run a
//! candidate ruleset in shadow mode. Authenticated with a bearer token
//! (`[admin] token`); with no token configured these routes do not exist.
//!
//! - `GET  /v1/admin/ruleset`: the live and candidate rulesets' labels.
//! - `POST /v1/admin/ruleset/reload`: re-read the configured files (as SIGHUP does).
//! - `PUT  /v1/admin/ruleset`: a ruleset (TOML body) becomes live.
//! - `PUT  /v1/admin/shadow`: a ruleset (TOML body) runs as the candidate;
//!   `DELETE` stops shadow mode; `GET` shows the agreement matrix and the
//!   recent disagreements.
//!
//! A ruleset that fails validation is a 400 naming the key, and the running
//! rulesets stay in force.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::{body, AppState};
use crate::config::Ruleset;

/// Largest ruleset body accepted (bytes).
pub const RULESET_BYTES_MAX: usize = 256 * 1024;

fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let token = state.admin_token.as_str();
    if token.is_empty() {
        return Err(ApiError::not_found(
            None,
            "the admin API is disabled (no [admin] token configured)",
        ));
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: the token is a secret.
    let matches = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !matches {
        return Err(ApiError::Unauthorized {
            message: "missing or wrong bearer token".into(),
        });
    }
    Ok(())
}

fn labels(state: &AppState) -> serde_json::Value {
    let (live, candidate) = state.scoring.labels();
    json!({ "live": live, "candidate": candidate })
}

pub async fn get_ruleset(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(labels(&state)))
}

pub async fn reload(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    state
        .scoring
        .reload(&state.ruleset_files)
        .map_err(|err| ApiError::InvalidRequest {
            field: None,
            message: err.to_string(),
        })?;
    tracing::info!(rulesets = %labels(&state), "rulesets reloaded");
    Ok(HttpResponse::Ok().json(labels(&state)))
}

async fn ruleset_body(req: &HttpRequest, payload: web::Payload) -> Result<Ruleset, ApiError> {
    let bytes = body::read(req, payload, RULESET_BYTES_MAX).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::InvalidRequest {
        field: None,
        message: "ruleset is not UTF-8".into(),
    })?;
    Ruleset::parse(text, "request body").map_err(|err| ApiError::InvalidRequest {
        field: None,
        message: err.to_string(),
    })
}

pub async fn put_ruleset(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let ruleset = ruleset_body(&req, payload).await?;
    state.scoring.set_live(ruleset);
    tracing::info!(rulesets = %labels(&state), "live ruleset replaced");
    Ok(HttpResponse::Ok().json(labels(&state)))
}

pub async fn put_shadow(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let ruleset = ruleset_body(&req, payload).await?;
    state.scoring.set_candidate(Some(ruleset));
    tracing::info!(rulesets = %labels(&state), "shadow mode started");
    Ok(HttpResponse::Ok().json(labels(&state)))
}

pub async fn delete_shadow(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    state.scoring.set_candidate(None);
    Ok(HttpResponse::Ok().json(labels(&state)))
}

pub async fn get_shadow(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let Some((candidate, tally)) = state.scoring.candidate() else {
        return Err(ApiError::not_found(
            None,
            "shadow mode is off (no candidate ruleset)",
        ));
    };
    Ok(HttpResponse::Ok().json(json!({
        "live": state.scoring.live().ruleset().label(),
        "candidate": candidate.ruleset().label(),
        "report": tally.report(),
    })))
}
