//! Reading request bodies under a size limit, and JSON that names the
//! offending field when it does not parse.

use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::HttpRequest;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Reads the whole body, refusing (413) anything over `limit` bytes before
/// buffering it: by Content-Length when given, by counting otherwise.
pub async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        message: format!("request body exceeds {limit} bytes"),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| ApiError::InvalidRequest {
            field: None,
            message: format!("cannot read body: {err}"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses JSON into `T`. A syntax error names no field; a type error names
/// the field by its path (`geo.asn`).
///
/// Valid bodies take serde_json's plain path; only a body that fails is
/// parsed again with path tracking, which costs about a third more and
/// is needed only to name the field in the error.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => json_with_path(bytes),
    }
}

fn json_with_path<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::InvalidRequest {
                field: None,
                message: format!("body is not valid JSON: {inner}"),
            }
        } else {
            ApiError::invalid(
                &path,
                format!("{path}: {}", strip_position(&inner.to_string())),
            )
        }
    })?;
    de.end().map_err(|err| ApiError::InvalidRequest {
        field: None,
        message: format!("body is not valid JSON: {err}"),
    })?;
    Ok(value)
}

/// serde_json appends " at line 1 column 17", which only helps with a file.
fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}
