//! The API's error shape and the one place errors become HTTP statuses:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::log::LogError;
use crate::partition::{PartitionError, RouteError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest {
        field: Option<String>,
        message: String,
    },
    #[error("{message}")]
    NotFound {
        field: Option<String>,
        message: String,
    },
    #[error("{message}")]
    MethodNotAllowed { message: String },
    #[error("{message}")]
    Unauthorized { message: String },

    #[error("{message}")]
    PayloadTooLarge { message: String },
    #[error("{message}")]
    Overloaded { message: String, retry_after_s: u32 },
    #[error("{message}")]
    Unavailable { message: String, retry_after_s: u32 },
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    pub fn not_found(field: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError::NotFound {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. } | ApiError::MethodNotAllowed { .. } => {
                "invalid_request"
            }
            ApiError::NotFound { .. } => "not_found",
            ApiError::Unauthorized { .. } => "unauthorized",

            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::Unavailable { .. } => "unavailable",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::InvalidRequest { field, .. } | ApiError::NotFound { field, .. } => {
                field.as_deref()
            }
            _ => None,
        }
    }

    /// Maps a routing failure; `retry_after_s` comes from the configuration.
    pub fn from_route(err: RouteError, retry_after_s: u32) -> ApiError {
        match err {
            RouteError::Overloaded(p) => ApiError::Overloaded {
                message: format!("partition {p} is saturated; retry later"),
                retry_after_s,
            },
            RouteError::Recovering(p) => ApiError::Unavailable {
                message: format!("partition {p} is still recovering its state"),
                retry_after_s,
            },
            RouteError::Stopped(p) => ApiError::Unavailable {
                message: format!("partition {p} is shutting down"),
                retry_after_s,
            },
            RouteError::Partition(err) => ApiError::from_partition(err, retry_after_s),
        }
    }

    pub fn from_partition(err: PartitionError, retry_after_s: u32) -> ApiError {
        match err {
            PartitionError::UnknownAttempt(id) => ApiError::not_found(
                Some("attempt_id"),
                format!("no attempt `{id}` is known for this user"),
            ),
            PartitionError::EventIdConflict(id) => ApiError::invalid(
                "event_id",
                format!("event_id `{id}` was already used for a different user or request"),
            ),
            PartitionError::Recovering => ApiError::Unavailable {
                message: "partition is still recovering".into(),
                retry_after_s,
            },
            PartitionError::Log(LogError::Codec(err)) => ApiError::InvalidRequest {
                field: None,
                message: err.to_string(),
            },
            err => {
                tracing::error!(error = %err, "storage failure");
                ApiError::Unavailable {
                    message: format!("the event log cannot be written: {err}"),
                    retry_after_s,
                }
            }
        }
    }

    pub fn from_log(err: LogError, retry_after_s: u32) -> ApiError {
        tracing::error!(error = %err, "durability failure");
        ApiError::Unavailable {
            message: format!("the event log cannot be made durable: {err}"),
            retry_after_s,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,

            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Overloaded { retry_after_s, .. }
        | ApiError::Unavailable { retry_after_s, .. } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
        }
        response.json(Body {
            error: Detail {
                code: self.code(),
                message: self.to_string(),
                field: self.field(),
            },
        })
    }
}
