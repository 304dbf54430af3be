//! The HTTP API (`../shared/api.md`, version 1). One file per route family;
//! handlers parse at the edge (`request`), call the partition router, and
//! map every failure through [`error::ApiError`].

pub mod admin;
pub mod body;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod ops;
pub mod outcomes;
pub mod request;
pub mod score;
pub mod users;

use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config::{LimitsConfig, RulesetConfig};
use crate::dead_letter::DeadLetters;
use crate::enrich::Enricher;
use crate::log::Durability;
use crate::metrics::Metrics;
use crate::partition::{Readiness, Router};
use crate::score::Scoring;
use error::ApiError;

/// What every handler shares.
pub struct AppState {
    pub router: Router,
    pub enricher: Enricher,
    pub scoring: Arc<Scoring>,
    pub dead_letters: Arc<DeadLetters>,
    pub durability: Durability,
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    pub limits: LimitsConfig,
    pub retry_after_s: u32,
    /// Bearer token of /v1/admin/*; empty: admin API disabled.
    pub admin_token: String,
    /// Where the rulesets are re-read from on reload.
    pub ruleset_files: RulesetConfig,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/score").route(web::post().to(score::handle)))
        .service(resource("/v1/outcomes").route(web::post().to(outcomes::handle)))
        .service(resource("/v1/events").route(web::post().to(events::handle)))
        .service(resource("/v1/users/{user_id}/context").route(web::get().to(users::context)))
        .service(resource("/v1/users/{user_id}").route(web::delete().to(users::erase)))
        .service(resource("/v1/dead-letters").route(web::get().to(dead_letters::list)))
        .service(resource("/healthz").route(web::get().to(ops::healthz)))
        .service(resource("/readyz").route(web::get().to(ops::readyz)))
        .service(resource("/metrics").route(web::get().to(ops::metrics)))
        .service(
            resource("/v1/admin/ruleset")
                .route(web::get().to(admin::get_ruleset))
                .route(web::put().to(admin::put_ruleset)),
        )
        .service(resource("/v1/admin/ruleset/reload").route(web::post().to(admin::reload)))
        .service(
            resource("/v1/admin/shadow")
                .route(web::get().to(admin::get_shadow))
                .route(web::put().to(admin::put_shadow))
                .route(web::delete().to(admin::delete_shadow)),
        )
        .default_service(web::to(not_found))
        .app_data(web::PathConfig::default().error_handler(|err, _| {
            ApiError::InvalidRequest {
                field: None,
                message: format!("invalid path: {err}"),
            }
            .into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::InvalidRequest {
                field: None,
                message: format!("invalid query: {err}"),
            }
            .into()
        }));
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        None,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        message: format!("{} is not allowed on {}", req.method(), req.path()),
    })
}

/// Counts requests by route and status, and times them.
pub fn observe<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let response = srv.call(req);
    async move {
        let response = response.await?;
        if let Some(metrics) = metrics {
            metrics
                .http_requests
                .with_label_values(&[&route, response.status().as_str()])
                .inc();
            metrics
                .request_seconds
                .with_label_values(&[&route])
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(response)
    }
}
