//! POST /v1/events: bulk ingest of logins that already happened (NDJSON).
//!
//! Each line is validated on its own; a bad line is rejected with its
//! number and reason and kept as a dead letter, and never rejects the batch.
//! Good lines go to their partitions in order (per user order is kept) and
//! the reply waits until all of them, and the dead letters, are durable.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::ApiError;
use super::request::{self, AttemptDto};
use super::{body, AppState};
use crate::clock;
use crate::dead_letter::Origin;
use crate::event::{LoginAttempt, Outcome};
use crate::partition::RouteError;

#[derive(Serialize)]
struct Rejected {
    line: u64,
    error: String,
}

#[derive(Serialize)]
struct EventsResponse {
    accepted: usize,
    rejected: Vec<Rejected>,
    /// Lines whose event_id was already recorded: accepted, nothing new recorded.
    duplicates: usize,
}

/// One partition's logins in request order, and the line index each came from.
type PartitionShare = (Vec<(LoginAttempt, Outcome)>, Vec<usize>);

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read(&req, payload, state.limits.events_body_bytes_max).await?;
    // A final newline ends the last line; it does not start another.
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let lines: Vec<&[u8]> = if body.is_empty() {
        Vec::new()
    } else {
        body.split(|&b| b == b'\n').collect()
    };
    if lines.len() > state.limits.events_lines_max {
        return Err(ApiError::PayloadTooLarge {
            message: format!(
                "{} lines exceed the limit of {}",
                lines.len(),
                state.limits.events_lines_max
            ),
        });
    }
    // Refuse up front rather than after some partitions have recorded their
    // share: a 503 must mean nothing was recorded.
    if !state.readiness.all_caught_up() {
        return Err(ApiError::Unavailable {
            message: "partitions are still recovering their state".into(),
            retry_after_s: state.retry_after_s,
        });
    }
    let now_ms = clock::now_ms();
    // Per partition, the logins in request order and the line each came from.
    let mut per_partition: Vec<PartitionShare> =
        vec![(Vec::new(), Vec::new()); state.router.partitions()];
    let mut rejected = Vec::new();
    for (index, raw) in lines.iter().enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line(raw, &state, now_ms) {
            Ok((attempt, outcome)) => {
                let (logins, line_indexes) =
                    &mut per_partition[state.router.partition_for(&attempt.user_id)];
                logins.push((attempt, outcome));
                line_indexes.push(index);
            }
            Err(err) => rejected.push(reject(&state, index, raw, err.to_string(), now_ms)?),
        }
    }

    let mut tasks = Vec::new();
    for (partition, (logins, line_indexes)) in per_partition.into_iter().enumerate() {
        if logins.is_empty() {
            continue;
        }
        let router = state.router.clone();
        tasks.push((
            line_indexes,
            actix_web::rt::spawn(async move { router.ingest(partition, logins).await }),
        ));
    }
    let mut accepted = 0;
    let mut duplicates = 0;
    let mut tickets = Vec::new();
    let mut failure = None;
    for (line_indexes, task) in tasks {
        match task.await {
            Ok(Ok(ingested)) => {
                accepted += line_indexes.len() - ingested.conflicts.len();
                duplicates += ingested.duplicates;
                for position in ingested.conflicts {
                    let index = line_indexes[position];
                    let reason = "event_id: already used for another user".to_owned();
                    rejected.push(reject(&state, index, lines[index], reason, now_ms)?);
                }
                state
                    .metrics
                    .events_appended
                    .with_label_values(&["login"])
                    .inc_by(ingested.recorded as u64);
                tickets.push(ingested.ticket);
            }
            Ok(Err(RouteError::Overloaded(_))) => {
                // Other partitions may have recorded their lines: report
                // these as not recorded (retry them) instead of failing all.
                for index in line_indexes {
                    let error = "overloaded: not recorded, retry this line".to_owned();
                    rejected.push(Rejected {
                        line: index as u64 + 1,
                        error,
                    });
                }
            }
            Ok(Err(err)) => failure = Some(ApiError::from_route(err, state.retry_after_s)),
            Err(_) => {
                failure = Some(ApiError::Unavailable {
                    message: "ingest task failed".into(),
                    retry_after_s: state.retry_after_s,
                })
            }
        }
    }
    // Rejected lines' dead letters need a barrier too, even if nothing was accepted.
    tickets.push(state.durability.barrier());
    for ticket in tickets {
        ticket
            .wait()
            .await
            .map_err(|e| ApiError::from_log(e, state.retry_after_s))?;
    }
    if let Some(err) = failure {
        return Err(err);
    }
    if duplicates > 0 {
        state
            .metrics
            .duplicates
            .with_label_values(&["login"])
            .inc_by(duplicates as u64);
    }
    rejected.sort_by_key(|r| r.line);
    Ok(HttpResponse::Ok().json(EventsResponse {
        accepted,
        rejected,
        duplicates,
    }))
}

/// Sets line `index` (0-based) aside as a dead letter and describes it for the reply.
fn reject(
    state: &AppState,
    index: usize,
    raw: &[u8],
    reason: String,
    now_ms: i64,
) -> Result<Rejected, ApiError> {
    let line = index as u64 + 1;
    state
        .dead_letters
        .put(Origin::events_line(line), &reason, raw, now_ms)
        .map_err(|err| {
            tracing::error!(error = %err, "cannot store dead letter");
            ApiError::Unavailable {
                message: "the dead-letter store cannot be written".into(),
                retry_after_s: state.retry_after_s,
            }
        })?;
    state
        .metrics
        .dead_letters
        .with_label_values(&["events"])
        .inc();
    Ok(Rejected {
        line,
        error: reason,
    })
}

fn parse_line(
    raw: &[u8],
    state: &AppState,
    now_ms: i64,
) -> Result<(LoginAttempt, Outcome), ApiError> {
    let mut dto: AttemptDto = body::json(raw)?;
    let outcome = request::outcome(dto.outcome.take())?;
    let attempt = dto.into_attempt(&state.enricher, state.limits.signals_max, now_ms)?;
    request::check_not_far_future(attempt.timestamp_ms, now_ms)?;
    Ok((attempt, outcome))
}
