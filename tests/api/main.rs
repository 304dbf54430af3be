//! The HTTP API contract (`../shared/api.md`), driven against the real
//! server on port 0 with a temporary data directory: one test binary, one
//! module per route family, `helpers` to start servers and call endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod errors;
mod events;
mod freeman;
mod helpers;
mod ops;
mod restart;
mod score;
