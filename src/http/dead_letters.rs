//! GET /v1/dead-letters?after=ID&limit=N: what was set aside and why, oldest first.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::request::format_timestamp;
use super::AppState;

/// Most dead letters one request returns.
pub const PAGE_MAX: usize = 1000;
const PAGE_DEFAULT: usize = 100;

#[derive(Deserialize)]
pub struct Page {
    after: Option<u64>,
    limit: Option<usize>,
}

pub async fn list(
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
    let letters = state
        .dead_letters
        .list(page.after.unwrap_or(0), limit)
        .map_err(|err| ApiError::Unavailable {
            message: format!("cannot read dead letters: {err}"),
            retry_after_s: state.retry_after_s,
        })?;
    let next_after = letters.last().map(|l| l.id);
    let items: Vec<_> = letters
        .into_iter()
        .map(|l| {
            json!({
                "id": l.id,
                "at": format_timestamp(l.at_ms),
                "source": l.source,
                "reason": l.reason,
                "line": l.line,
                "partition": l.partition,
                "offset": l.offset,
                "raw": l.raw,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "dead_letters": items,
        "total": state.dead_letters.len(),
        "dropped": state.dead_letters.dropped(),
        "next_after": next_after,
    })))
}
