//! GET /v1/users/{user_id}/context and DELETE /v1/users/{user_id}.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::request::{self, format_timestamp};
use super::AppState;
use crate::clock;
use crate::projection::bounded::{RecentSet, Seen};
use crate::projection::keys::DeviceKey;
use crate::projection::UserContext;

#[derive(Serialize)]
struct SeenView<T: Serialize> {
    #[serde(flatten)]
    value: T,
    first_seen: String,
    last_seen: String,
    logins: u32,
}

fn seen<T, V: Serialize>(set: &RecentSet<T>, view: impl Fn(&T) -> V) -> Vec<SeenView<V>>
where
    T: PartialEq,
{
    let mut entries: Vec<&Seen<T>> = set.iter().collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.last_ms));
    entries
        .into_iter()
        .map(|e| SeenView {
            value: view(&e.value),
            first_seen: format_timestamp(e.first_ms),
            last_seen: format_timestamp(e.last_ms),
            logins: e.count,
        })
        .collect()
}

fn device_view(device: &DeviceKey) -> serde_json::Value {
    match device {
        DeviceKey::Id(id) => json!({ "device_id": id, "kind": "device_id" }),
        DeviceKey::UserAgent(_) => {
            json!({ "device_id": device.to_string(), "kind": "user_agent_fingerprint" })
        }
    }
}

fn context_view(user_id: &str, user: &UserContext, state: &AppState) -> serde_json::Value {
    let history = state.scoring.live().history_state(Some(user));
    let last_success = user.last_success.as_ref().map(|last| {
        json!({
            "timestamp": format_timestamp(last.at_ms),
            "ip": last.ip.to_string(),
            "country": last.country.map(|c| c.to_string()),
            "city": last.city,
            "latitude": last.location.map(|l| l.latitude),
            "longitude": last.location.map(|l| l.longitude),
            "accuracy_radius_km": last.location.and_then(|l| l.accuracy_radius_km),
        })
    });
    json!({
        "user_id": user_id,
        "history": history.as_str(),
        "history_size": user.successes,
        "devices": seen(&user.devices, device_view),
        "countries": seen(&user.countries, |c| json!({ "country": c.to_string() })),
        "asns": seen(&user.asns, |asn| json!({ "asn": asn })),
        "ip_prefixes": seen(&user.ip_prefixes, |p| json!({ "prefix": p.to_string() })),
        "last_success": last_success,
        "recent_failures": {
            "count": user.failures.len(),
            "timestamps": user.failures.iter().map(|f| format_timestamp(f.at_ms)).collect::<Vec<_>>(),

        },
        "failures_total": user.failures_total,
        "hostile": {
            "devices": seen(&user.hostile_devices, device_view),
            "ips": seen(&user.hostile_ips, |ip| json!({ "ip": ip.to_string() })),
        },
        "model_history_entries": user.model.len(),
        "first_seen": format_timestamp(user.first_seen_ms),
        "last_seen": format_timestamp(user.last_seen_ms),
    })
}

pub async fn context(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user_id = request::user_id(Some(path.into_inner()), "user_id")?;
    let user = state
        .router
        .user(user_id.clone())
        .await
        .map_err(|e| ApiError::from_route(e, state.retry_after_s))?
        .ok_or_else(|| {
            ApiError::not_found(Some("user_id"), format!("user `{user_id}` is not known"))
        })?;
    Ok(HttpResponse::Ok().json(context_view(&user_id, &user, &state)))
}

pub async fn erase(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user_id = request::user_id(Some(path.into_inner()), "user_id")?;
    let (existed, ticket) = state
        .router
        .erase(user_id.clone(), clock::now_ms())
        .await
        .map_err(|e| ApiError::from_route(e, state.retry_after_s))?;
    ticket
        .wait()
        .await
        .map_err(|e| ApiError::from_log(e, state.retry_after_s))?;
    state
        .metrics
        .events_appended
        .with_label_values(&["erase"])
        .inc();
    Ok(HttpResponse::Accepted()
        .json(json!({ "accepted": true, "user_id": user_id, "existed": existed })))
}
