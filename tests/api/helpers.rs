//! Starting a real riskd on port 0 with a temporary data directory, and one
//! small method per endpoint to call it.
//!
//! The server runs in an actix system on its own thread, built exactly as
//! `riskd serve` builds it (`Application::build`). `TestApp::stop` stops it
//! gracefully (snapshots written) and hands back the data directory, so a
//! test can start a new server on the same state.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use riskd::config::Config;
use riskd::startup::Application;
use serde_json::Value;
use tempfile::TempDir;

/// Partitions of a test server (several, so cross-partition paths run).
pub const TEST_PARTITIONS: u32 = 4;
/// How long a server may take to become ready before a test gives up.
pub const READY_WAIT_MAX: Duration = Duration::from_secs(30);
/// How long a restart in the same process may wait for the previous
/// server's threads to release the sled lock on the data directory.
const LOCK_WAIT_MAX: Duration = Duration::from_secs(10);
/// Upper bound on any one HTTP exchange in a test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub data_dir: PathBuf,
    dir: Option<TempDir>,
    agent: ureq::Agent,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// An HTTP answer: status, the Retry-After and Content-Type headers, the
/// body as text and, when it parses, as JSON (`Value::Null` otherwise).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub text: String,
    pub body: Value,
}

/// The configuration every test server starts from: the embedded defaults
/// on port 0, few partitions and threads (the machine is shared).
fn base_config(data_dir: &Path) -> Config {
    let mut config = Config::embedded().expect("the embedded configuration loads");
    config.server.listen = "127.0.0.1:0".into();
    config.server.data_dir = data_dir.to_owned();
    config.server.http_workers = 2;
    config.server.shutdown_timeout_s = 5;
    config.log.partitions = TEST_PARTITIONS;
    config.partition.threads = 2;
    config
}

/// A ready server on a fresh data directory with the test defaults.
pub fn spawn_app() -> TestApp {
    spawn_app_with(|_| {})
}

/// A ready server on a fresh data directory, configuration adjusted by `tweak`.
pub fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    spawn_app_in(dir, tweak)
}

/// A ready server on an existing data directory (a restart).
pub fn spawn_app_in(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let app = launch(dir, tweak).unwrap_or_else(|err| panic!("riskd did not start: {err}"));
    app.wait_ready();
    app
}

/// Starts a server without waiting for it to be ready (it may still be
/// replaying its log). Errs with the startup error if it does not start.
pub fn launch(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> Result<TestApp, String> {
    let mut config = base_config(dir.path());
    tweak(&mut config);
    let (started_tx, started_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let deadline = Instant::now() + LOCK_WAIT_MAX;
            let app = loop {
                match Application::build(config.clone()) {
                    Ok(app) => break app,
                    // The previous server on this directory is still letting go of it.
                    Err(err)
                        if error_chain(&err).contains("could not acquire lock")
                            && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(err) => {
                        let _ = started_tx.send(Err(error_chain(&err)));
                        return Ok(());
                    }
                }
            };
            let _ = started_tx.send(Ok((app.port(), app.handle())));
            app.run_until_stopped().await
        })
    });
    let (port, handle) = match started_rx.recv() {
        Ok(Ok(started)) => started,
        Ok(Err(err)) => {
            let _ = thread.join();
            return Err(err);
        }
        Err(_) => {
            let outcome = thread.join();
            return Err(format!("the server thread ended early: {outcome:?}"));
        }
    };
    Ok(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        data_dir: dir.path().to_owned(),
        dir: Some(dir),
        agent: new_agent(),
        handle: Some(handle),
        thread: Some(thread),
    })
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A client that returns 4xx/5xx answers instead of turning them into errors.
pub fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .new_agent()
}

impl TestApp {
    /// Stops the server gracefully (in-flight requests finish, partitions
    /// write their snapshots) and returns its data directory.
    pub fn stop(mut self) -> TempDir {
        if let Err(err) = self.shutdown() {
            panic!("riskd did not stop cleanly: {err}");
        }
        self.dir.take().expect("the data directory is still owned")
    }

    fn shutdown(&mut self) -> Result<(), String> {
        // Close pooled keep-alive connections first: a graceful stop waits
        // for open connections, idle ones included.
        self.agent = new_agent();
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(true));
        }
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(err))) => Err(format!("run_until_stopped failed: {err}")),
            Some(Err(_)) => Err("the server thread panicked".into()),
        }
    }

    /// A client for this server, e.g. for another thread.
    pub fn agent(&self) -> ureq::Agent {
        self.agent.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Polls GET /readyz until it answers 200; panics after [`READY_WAIT_MAX`].
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WAIT_MAX;
        loop {
            let reply = self.get("/readyz");
            if reply.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "riskd not ready after {READY_WAIT_MAX:?}: {reply:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// POST /v1/score
    pub fn score(&self, body: &Value) -> Reply {
        self.post_raw("/v1/score", "application/json", body.to_string().as_bytes())
    }

    /// POST /v1/outcomes
    pub fn outcome(&self, body: &Value) -> Reply {
        self.post_raw(
            "/v1/outcomes",
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    /// POST /v1/events (NDJSON)
    pub fn events(&self, ndjson: &str) -> Reply {
        self.post_raw("/v1/events", "application/x-ndjson", ndjson.as_bytes())
    }

    /// GET /v1/users/{user_id}/context
    pub fn context(&self, user_id: &str) -> Reply {
        self.get(&format!("/v1/users/{user_id}/context"))
    }

    /// DELETE /v1/users/{user_id}
    pub fn erase(&self, user_id: &str) -> Reply {
        self.request("DELETE", &format!("/v1/users/{user_id}"))
    }

    /// GET /v1/dead-letters
    pub fn dead_letters(&self) -> Reply {
        self.get("/v1/dead-letters")
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path)
    }

    /// Any method, no body.
    pub fn request(&self, method: &str, path: &str) -> Reply {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .body(())
            .expect("a valid request");
        into_reply(self.agent.run(request), method, path)
    }

    /// An admin API call: `token` as bearer token (None: no header), optional body.
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = builder
            .body(body.unwrap_or_default().to_owned())
            .expect("a valid request");
        into_reply(self.agent.run(request), method, path)
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        post_with(&self.agent, &self.url(path), content_type, body)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that panicked still stops its server; errors are secondary then.
        let _ = self.shutdown();
    }
}

/// POST with `agent` (usable from threads that hold a cloned agent).
pub fn post_with(agent: &ureq::Agent, url: &str, content_type: &str, body: &[u8]) -> Reply {
    let result = agent
        .post(url)
        .header("Content-Type", content_type)
        .send(body);
    into_reply(result, "POST", url)
}

fn into_reply(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    method: &str,
    path: &str,
) -> Reply {
    let mut response = result.unwrap_or_else(|err| panic!("{method} {path}: {err}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after");
    let content_type = header("content-type");
    let text = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|err| panic!("{method} {path}: reading the body: {err}"));
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    let reply = Reply {
        status: response.status().as_u16(),
        retry_after,
        content_type,
        text,
        body,
    };
    // Contract-wide: no 5xx but the specified 503, and every error has the error shape.
    assert!(
        reply.status < 500 || reply.status == 503,
        "{method} {path} answered {}: {}",
        reply.status,
        reply.text
    );
    if reply.status >= 400 {
        assert_error_shape(&reply);
    }
    reply
}

impl Reply {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        &self.body
    }

    /// Asserts an error answer of the contract's shape,
    /// `{"error": {"code", "message", "field"?}}`, and returns its `field`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Option<&str> {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        assert_error_shape(self);
        assert_eq!(self.body["error"]["code"], code, "{}", self.text);
        if status == 429 || status == 503 {
            let retry_after = self.retry_after.as_deref().unwrap_or("");
            assert!(
                retry_after.parse::<u32>().is_ok(),
                "a {status} needs a Retry-After in seconds, got {:?}",
                self.retry_after
            );
        }
        self.body["error"]["field"].as_str()
    }

    /// The reason with this code, if the answer has one.
    pub fn reason(&self, code: &str) -> Option<&Value> {
        self.body["reasons"]
            .as_array()?
            .iter()
            .find(|r| r["code"] == code)
    }

    pub fn has_reason(&self, code: &str) -> bool {
        self.reason(code).is_some()
    }

    pub fn risk(&self) -> f64 {
        self.body["risk"]
            .as_f64()
            .unwrap_or_else(|| panic!("no risk in {}", self.text))
    }
}

/// `{"error": {"code": string, "message": string, "field": string?}}` and nothing else.
#[track_caller]
pub fn assert_error_shape(reply: &Reply) {
    let error = reply.body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("not an error body: {} {}", reply.status, reply.text));
    assert!(
        reply.body.as_object().is_some_and(|o| o.len() == 1),
        "{}",
        reply.text
    );
    assert!(error["code"].is_string(), "{}", reply.text);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    if let Some(field) = error.get("field") {
        assert!(field.is_string(), "{}", reply.text);
    }
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "{}",
        reply.text
    );
}

/// The value of one Prometheus sample, e.g. `riskd_decisions_total{decision="allow"}`;
/// 0 when absent. `series` is matched against the line up to its value.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(name, _)| *name == series)
        .map(|(_, value)| value.parse::<f64>().unwrap_or(f64::NAN))
        .sum()
}

/// The sum of every sample of a metric family (all label sets).
pub fn metric_sum(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(name, _)| *name == family || name.starts_with(&format!("{family}{{")))
        .map(|(_, value)| value.parse::<f64>().unwrap_or(f64::NAN))
        .sum()
}

/// RFC 3339 timestamp `seconds` after 2025-06-02T00:00:00Z (tests use event time).
pub fn at(seconds: i64) -> String {
    let base = time::macros::datetime!(2025-06-02 00:00:00 UTC);
    (base + time::Duration::seconds(seconds))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// A context without the fields that name the user, to compare two users' contexts.
pub fn without_user_id(mut context: Value) -> Value {
    if let Some(object) = context.as_object_mut() {
        object.remove("user_id");
    }
    context
}
