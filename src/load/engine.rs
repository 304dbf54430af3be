//! The engine: one paced run over a set of HTTP/1.1 keep-alive connections.
//!
//! Everything runs on one tokio thread (the generator shares the machine
//! with the server, so it must be frugal), plus an alarm thread for
//! precise wake-ups ([`super::alarm`]). The dispatcher owns the idle
//! connections, the schedule, the outcomes waiting to be reported and the
//! recorder; each request is a small task that takes a connection, sends,
//! reads the whole answer, and hands the connection back with what
//! happened. When every connection is busy, due requests wait for one:
//! their latency still counts from their intended time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::alarm::Alarm;
use super::record::{Failure, Recorder, RequestKind, RunInfo};
use super::report::RunReport;
use super::schedule::Schedule;
use super::target::Target;
use super::workload::{PendingOutcome, Workload};
use super::LoadError;

type Body = Full<Bytes>;
type Sender = SendRequest<Body>;

/// Largest answer read; a larger one fails the request (a connection error).
const RESPONSE_BYTES_MAX: usize = 1 << 20;
/// Outcomes waiting for a paced slot; beyond this they are skipped (and
/// counted). They are served before new scores, so the queue stays short
/// unless the server stops answering.
const PENDING_OUTCOMES_MAX: usize = 65_536;
/// How long after the schedule's end due requests may still go out (a
/// server that fell behind); those still waiting then count as not sent.
const DRAIN_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long opening one connection before the run may take.
const CONNECT_WAIT_MAX: Duration = Duration::from_secs(5);
/// The schedule starts this long after the connections are open, so the
/// alarm thread is up before the first request is due.
const START_DELAY: Duration = Duration::from_millis(20);
/// Linux reports process CPU time in ticks of 1/100 s (USER_HZ).
const CLOCK_TICKS_PER_S: u64 = 100;

/// How the generator drives a run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub connections: usize,
    pub outcome_share: f64,
    pub request_timeout: Duration,
    pub seed: u64,
}

/// One paced run: `warmup` (not recorded), then `duration` (recorded).
#[derive(Clone, Debug)]
pub struct Phase<'a> {
    pub run_id: &'a str,
    /// The workload index of the first score request: runs of one
    /// generator go on through the pool (and event time) where the
    /// previous one stopped.
    pub first_score: u64,
    pub rate_per_s: f64,
    pub warmup: Duration,
    pub duration: Duration,
}

/// A request on its way.
struct Job {
    kind: RequestKind,
    intended: Instant,
    measured: bool,
    /// The login, for a score whose outcome is to be reported.
    outcome_for: Option<(usize, i64)>,
}

/// A request's fate, with its connection if that is still usable.
struct Finished {
    job: Job,
    sender: Option<Sender>,
    result: Result<Exchange, Failure>,
}

struct Exchange {
    sent: Instant,
    done: Instant,
    status: u16,
    /// From a score answer, when its outcome is to be reported.
    attempt_id: Option<String>,
}

#[derive(Deserialize)]
struct ScoreAnswer {
    attempt_id: String,
}

/// Runs `phase`; returns its report and the workload index after its last
/// score request.
pub async fn run(
    target: &Arc<Target>,
    workload: &Workload,
    settings: &Settings,
    phase: &Phase<'_>,
) -> Result<(RunReport, u64), LoadError> {
    let mut idle = open_connections(target, settings.connections).await?;
    let cpu_before = process_cpu_time();
    let wall_before = Instant::now();
    let mut recorder = Recorder::new()?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    // Every task holds a sender until it reports, and there is at most one
    // task per connection: the channel never fills.
    let (done_tx, mut done_rx) = mpsc::channel::<Finished>(settings.connections);

    let schedule = Schedule::new(
        Instant::now() + START_DELAY,
        phase.rate_per_s,
        phase.warmup + phase.duration,
    );
    let total = schedule.total();
    let measured_from = schedule.count_before(phase.warmup);
    let mut alarm = Alarm::start().map_err(LoadError::Thread)?;
    let drain_deadline = schedule.intended(total) + DRAIN_WAIT_MAX;
    let drain = tokio::time::sleep_until(drain_deadline.into());
    tokio::pin!(drain);

    let mut pending: VecDeque<PendingOutcome> = VecDeque::new();
    let mut next = 0; // the next request of the schedule to send
    let mut scores = phase.first_score; // the workload's index
    let mut in_flight = 0;
    loop {
        let due = schedule.due_at(Instant::now());
        while next < due {
            let Some(sender) = idle.pop_front() else {
                break;
            };
            let measured = next >= measured_from;
            let (kind, body, outcome_for) = match pending.pop_front() {
                Some(outcome) => (RequestKind::Outcome, workload.outcome(&outcome), None),
                None => {
                    let score = workload.score(phase.run_id, scores);
                    scores += 1;
                    let report_outcome = rng.random::<f64>() < settings.outcome_share;
                    let outcome_for = report_outcome.then_some((score.login, score.timestamp_ms));
                    (RequestKind::Score, score.body, outcome_for)
                }
            };
            if measured {
                recorder.sent(kind);
            }
            let job = Job {
                kind,
                intended: schedule.intended(next),
                measured,
                outcome_for,
            };
            let request = post(target, kind, body);
            tokio::spawn(exchange(
                target.clone(),
                sender,
                request,
                job,
                settings.request_timeout,
                done_tx.clone(),
            ));
            next += 1;
            in_flight += 1;
        }
        if next >= total && in_flight == 0 {
            break;
        }
        let waiting_to_send = next < total && !idle.is_empty();
        if waiting_to_send && in_flight == 0 {
            // Nothing is in flight, so no answer can arrive: this thread
            // may sleep until the next request is due, more precisely than
            // tokio's millisecond timer and without waking the alarm thread.
            alarm.clear();
            let wait = schedule
                .intended(next)
                .saturating_duration_since(Instant::now());
            std::thread::sleep(wait);
            continue;
        }
        if waiting_to_send {
            alarm.set(schedule.intended(next));
        }
        tokio::select! {
            finished = done_rx.recv() => {
                // `None` cannot happen: this function holds a sender.
                let Some(finished) = finished else { break };
                in_flight -= 1;
                settle(finished, &mut recorder, &mut pending, &mut idle);
            }
            () = alarm.rung(), if waiting_to_send => {}
            () = &mut drain, if next < total => {
                recorder.not_sent(total - next.max(measured_from));
                next = total;
            }
        }
    }
    alarm.stop();

    let wall = wall_before.elapsed();
    let generator_cpu_percent = match (cpu_before, process_cpu_time()) {
        (Some(before), Some(after)) if !wall.is_zero() => {
            Some(100.0 * after.saturating_sub(before).as_secs_f64() / wall.as_secs_f64())
        }
        _ => None,
    };
    let report = recorder.report(RunInfo {
        target: target.url.clone(),
        rate_target_per_s: phase.rate_per_s,
        warmup: phase.warmup,
        duration: phase.duration,
        connections: settings.connections,
        requests: total - measured_from,
        measure_start: schedule.intended(measured_from),
        generator_cpu_percent,
    })?;
    Ok((report, scores))
}

/// Records a finished request, queues its outcome, and returns its
/// connection to the back of the idle queue.
fn settle(
    finished: Finished,
    recorder: &mut Recorder,
    pending: &mut VecDeque<PendingOutcome>,
    idle: &mut VecDeque<Option<Sender>>,
) {
    let Finished {
        job,
        sender,
        result,
    } = finished;
    match result {
        Ok(exchange) => {
            if job.measured {
                recorder.answer(
                    job.kind,
                    exchange.status,
                    job.intended,
                    exchange.sent,
                    exchange.done,
                );
            }
            if let (Some((login, timestamp_ms)), Some(attempt_id)) =
                (job.outcome_for, exchange.attempt_id)
            {
                if pending.len() < PENDING_OUTCOMES_MAX {
                    pending.push_back(PendingOutcome {
                        login,
                        attempt_id,
                        timestamp_ms,
                    });
                } else {
                    recorder.outcome_skipped();
                }
            }
        }
        Err(failure) => {
            if job.measured {
                recorder.failure(failure);
            }
        }
    }
    // First in, first out: load spreads over every connection (and so over
    // the server's workers), as a gateway's connection pool would spread it.
    idle.push_back(sender);
}

fn post(target: &Target, kind: RequestKind, body: Bytes) -> Request<Body> {
    let path = match kind {
        RequestKind::Score => "/v1/score",
        RequestKind::Outcome => "/v1/outcomes",
    };
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = Uri::from_static(path);
    let headers = request.headers_mut();
    headers.insert(HOST, target.host.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request
}

/// One request, start to finish, bounded by `timeout`.
async fn exchange(
    target: Arc<Target>,
    sender: Option<Sender>,
    request: Request<Body>,
    job: Job,
    timeout: Duration,
    done: mpsc::Sender<Finished>,
) {
    let want_attempt_id = job.outcome_for.is_some();
    let attempt =
        tokio::time::timeout(timeout, send(&target, sender, request, want_attempt_id)).await;
    let (sender, result) = match attempt {
        Ok(Ok((sender, exchange))) => (Some(sender), Ok(exchange)),
        Ok(Err(failure)) => (None, Err(failure)),
        // Dropping the request closes its connection: the next request on
        // this slot opens a new one.
        Err(_elapsed) => (None, Err(Failure::Timeout)),
    };
    // The dispatcher only stops listening once nothing is in flight.
    let _ = done
        .send(Finished {
            job,
            sender,
            result,
        })
        .await;
}

async fn send(
    target: &Target,
    sender: Option<Sender>,
    request: Request<Body>,
    want_attempt_id: bool,
) -> Result<(Sender, Exchange), Failure> {
    let mut sender = match sender {
        Some(sender) if !sender.is_closed() => sender,
        _ => connect(target).await.map_err(|_| Failure::Connect)?,
    };
    if sender.ready().await.is_err() {
        // The server closed this keep-alive connection while it was idle
        // (its keep-alive timeout): not the request's failure.
        sender = connect(target).await.map_err(|_| Failure::Connect)?;
        sender.ready().await.map_err(|_| Failure::Connection)?;
    }
    let sent = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| Failure::Connection)?;
    let status = response.status().as_u16();
    // The whole answer is read: the connection is reusable only after it.
    let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
        .collect()
        .await
        .map_err(|_| Failure::Connection)?
        .to_bytes();
    let done = Instant::now();
    let attempt_id = if want_attempt_id && (200..300).contains(&status) {
        serde_json::from_slice::<ScoreAnswer>(&body)
            .ok()
            .map(|answer| answer.attempt_id)
    } else {
        None
    };
    Ok((
        sender,
        Exchange {
            sent,
            done,
            status,
            attempt_id,
        },
    ))
}

/// Opens an HTTP/1.1 connection with TCP_NODELAY.
async fn connect(target: &Target) -> std::io::Result<Sender> {
    let stream = TcpStream::connect(target.addr).await?;
    // Requests and answers are small: Nagle's algorithm would hold a
    // request back until the previous segment is acknowledged.
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // Drives the socket. When it fails, the sender says so at its next
        // use and the slot gets a new connection; nothing to do here.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Opens the run's connections before it starts, so that their setup is
/// not in the first requests' latency. Fails if none opens; a slot whose
/// connection did not open tries again at its first request.
async fn open_connections(
    target: &Target,
    connections: usize,
) -> Result<VecDeque<Option<Sender>>, LoadError> {
    let mut idle = VecDeque::with_capacity(connections);
    for n in 0..connections {
        let opened = match tokio::time::timeout(CONNECT_WAIT_MAX, connect(target)).await {
            Ok(opened) => opened,
            Err(_elapsed) => Err(std::io::ErrorKind::TimedOut.into()),
        };
        match opened {
            Ok(sender) => idle.push_back(Some(sender)),
            // The first connection failed: the others would too.
            Err(source) if n == 0 => {
                return Err(LoadError::Connect {
                    target: target.url.clone(),
                    source,
                })
            }
            Err(_) => idle.push_back(None),
        }
    }
    Ok(idle)
}

/// CPU time (user + system) this process has used, from /proc/self/stat;
/// `None` where there is no such file.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields after it. utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (user + system) * 1000 / CLOCK_TICKS_PER_S,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_time_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_time().is_some());
        }
    }
}
