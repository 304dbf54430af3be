//! The framework's floor: a minimal actix-web server with riskd's two hot
//! routes and nothing behind them. Each handler reads the JSON body,
//! parses it into a `serde_json::Value` and answers a small fixed reply of
//! riskd's shape; same actix-web and worker count as riskd. Load it with
//! `riskd load` exactly like riskd, and riskd's cost is the ratio of the
//! two reports.
//!
//!     cargo run --release --example baseline -- --listen 127.0.0.1:8081
//!     cargo run --release -- load --target http://127.0.0.1:8081 --rate 10000 --duration 60s

use std::net::TcpListener;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "A minimal actix-web server with riskd's score and outcome routes")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// HTTP worker threads; 0 = one per core, as riskd's `server.http_workers`.
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

/// POST /v1/score: parse, answer "allow".
async fn score(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<Value>(&body) {
        Ok(request) => {
            let attempt_id = request
                .get("event_id")
                .and_then(Value::as_str)
                .unwrap_or("x");
            HttpResponse::Ok().json(json!({
                "attempt_id": attempt_id,
                "decision": "allow",
                "risk": 0.0,
                "reasons": [],
                "history": "none",
                "ruleset": "baseline",
            }))
        }
        Err(err) => invalid(&err),
    }
}

/// POST /v1/outcomes: parse, accept.
async fn outcomes(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<Value>(&body) {
        Ok(_) => HttpResponse::Accepted().json(json!({ "accepted": true })),
        Err(err) => invalid(&err),
    }
}

fn invalid(err: &serde_json::Error) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "error": {"code": "invalid_request", "message": err.to_string()}
    }))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let workers = match args.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let listener = TcpListener::bind(&args.listen)?;
    let addr = listener.local_addr()?;
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| {
            App::new()
                .route("/v1/score", web::post().to(score))
                .route("/v1/outcomes", web::post().to(outcomes))
        })
        .workers(workers)
        .listen(listener)?
        .run();
        // Alone on its line, like riskd's, for scripts that start it on port 0.
        println!("baseline listening on http://{addr}");
        server.await
    })
}
