//! Sends over ONE long-lived `StreamCreateMessages` call, multiplexed.
//!
//! Callers hand a request and a reply slot to the driver task over a bounded queue. The
//! driver writes each request to the open stream and remembers its reply slot with the
//! request's 0-based index in the stream; the core answers every request exactly once and in
//! request order, each after its commit, carrying the index (`request_index`), so the oldest
//! waiting slot gets each response (a mismatch is a broken stream). At most
//! [`super::GrpcCoreConfig::max_in_flight_sends`] requests are unanswered; with that many
//! the driver stops taking requests and callers wait in the queue (within their deadline).
//!
//! The stream is opened at the first send and reopened at the next send after it broke
//! (the core restarted, the connection dropped): the sends in flight on a broken stream fail
//! with `Unavailable` (their outcome is unknown; a retry with the same client message id is
//! safe, sends are idempotent), and so does a send while the core cannot be reached.

use std::collections::VecDeque;
use std::sync::Arc;

use chat_domain::DomainError;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

use super::conn::{CallError, Conn};
use super::status::domain_error;
use crate::pb::message::v1::message_service_client::MessageServiceClient;
use crate::pb::message::v1::{CreateMessageRequest, CreateMessageResponse};

type Reply = oneshot::Sender<Result<CreateMessageResponse, DomainError>>;

/// One send waiting for the driver.
struct Job {
    req: CreateMessageRequest,
    reply: Reply,
}

/// The handle callers send through; the driver task ends when every handle is dropped.
pub(crate) struct SendStream {
    jobs: mpsc::Sender<Job>,
    conn: Arc<Conn>,
}

impl SendStream {
    /// Spawns the driver (needs a tokio runtime). Nothing connects before the first send.
    pub(crate) fn spawn(conn: Arc<Conn>) -> SendStream {
        let (jobs, rx) = mpsc::channel(conn.cfg.max_in_flight_sends);
        tokio::spawn(drive(conn.clone(), rx));
        SendStream { jobs, conn }
    }

    /// Sends one request; answers with the core's response once committed.
    ///
    /// # Errors
    /// The core's refusal of this request (mapped as [`super::status_domain`]);
    /// `Unavailable` when the core cannot be reached, the stream broke with the send in
    /// flight, or no answer came within `request_timeout` (queueing included).
    pub(crate) async fn send(&self, req: CreateMessageRequest) -> Result<CreateMessageResponse, DomainError> {
        let timeout = self.conn.cfg.request_timeout;
        let (reply, answer) = oneshot::channel();
        let wait = async {
            self.jobs
                .send(Job { req, reply })
                .await
                .map_err(|_| DomainError::Unavailable("the gateway's send stream to the core is closed".into()))?;
            answer
                .await
                .map_err(|_| DomainError::Unavailable("the gateway's send stream to the core stopped".into()))?
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or_else(|_| {
            Err(DomainError::Unavailable(format!(
                "the core did not answer within {} ms; the message may or may not be stored: retry it with the \
                 same client message id",
                timeout.as_millis()
            )))
        })
    }
}

/// The next job whose caller is still waiting; `None` when every handle is gone.
async fn next_live(jobs: &mut mpsc::Receiver<Job>) -> Option<Job> {
    loop {
        let job = jobs.recv().await?;
        if !job.reply.is_closed() {
            return Some(job);
        }
    }
}

/// Opens the stream with the current service token (once more with a fresh token when the
/// core refuses it). Returns the request sender and the response stream.
async fn open(
    conn: &Conn,
) -> Result<(mpsc::Sender<CreateMessageRequest>, Streaming<CreateMessageResponse>), DomainError> {
    let mut retried = false;
    loop {
        let token = conn.token.get().await?;
        let (tx, rx) = mpsc::channel(conn.cfg.max_in_flight_sends);
        let req = Conn::authed(&token, ReceiverStream::new(rx)).map_err(CallError::into_domain)?;
        let mut client = MessageServiceClient::new(conn.channel.clone());
        let opened = tokio::time::timeout(conn.cfg.request_timeout, client.stream_create_messages(req)).await;
        match opened {
            Ok(Ok(resp)) => return Ok((tx, resp.into_inner())),
            Ok(Err(s)) if s.code() == Code::Unauthenticated && !retried => {
                conn.token.invalidate(&token).await;
                retried = true;
            }
            Ok(Err(s)) => return Err(super::status_domain(&s)),
            Err(_) => {
                return Err(DomainError::Unavailable(format!(
                    "the core did not open the message stream within {} ms",
                    conn.cfg.request_timeout.as_millis()
                )));
            }
        }
    }
}

/// The in-stream answer as the caller's result.
fn outcome(resp: CreateMessageResponse) -> Result<CreateMessageResponse, DomainError> {
    if resp.success {
        return Ok(resp);
    }
    let code = Code::from_i32(resp.error_code);
    let code = if code == Code::Ok { Code::Unknown } else { code };
    Err(domain_error(code, &resp.error_message, u64::try_from(resp.retry_after_ms).unwrap_or(0)))
}

/// Fails every in-flight send: the stream broke, their outcome is unknown.
fn fail_all(in_flight: &mut VecDeque<(i64, Reply)>, why: &str) {
    if !in_flight.is_empty() {
        tracing::warn!(count = in_flight.len(), reason = why, "sends in flight on a broken stream to the core fail");
    }
    for (_, reply) in in_flight.drain(..) {
        let _ = reply.send(Err(DomainError::Unavailable(format!(
            "the message stream to the core broke ({why}); the message may or may not be stored: retry it with the \
             same client message id"
        ))));
    }
}

/// The driver: opens the stream on demand, pipes jobs into it, matches responses to waiters.
async fn drive(conn: Arc<Conn>, mut jobs: mpsc::Receiver<Job>) {
    let max = conn.cfg.max_in_flight_sends;
    loop {
        let Some(first) = next_live(&mut jobs).await else { return };
        let (tx, mut inbound) = match open(&conn).await {
            Ok(opened) => opened,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open the message stream to the core");
                let _ = first.reply.send(Err(e));
                continue;
            }
        };
        let mut in_flight: VecDeque<(i64, Reply)> = VecDeque::with_capacity(max);
        let mut next_index = 0i64;
        let mut pending = Some(first);
        let mut jobs_open = true;
        loop {
            if let Some(job) = pending.take() {
                // `tx` holds `max` requests and at most `max` are unanswered: never waits long.
                if tx.send(job.req).await.is_err() {
                    let _ =
                        job.reply.send(Err(DomainError::Unavailable("the message stream to the core closed".into())));
                    fail_all(&mut in_flight, "request side closed");
                    break;
                }
                in_flight.push_back((next_index, job.reply));
                next_index += 1;
            }
            if !jobs_open && in_flight.is_empty() {
                return;
            }
            tokio::select! {
                job = next_live(&mut jobs), if jobs_open && in_flight.len() < max => match job {
                    Some(job) => pending = Some(job),
                    None => jobs_open = false, // answer what is in flight, then stop
                },
                msg = inbound.message() => match msg {
                    Ok(Some(resp)) => match in_flight.pop_front() {
                        Some((index, reply)) if index == resp.request_index => {
                            let _ = reply.send(outcome(resp)); // Err: the caller gave up
                        }
                        Some((index, reply)) => {
                            let why = format!("answer for request {} while {index} was next", resp.request_index);
                            in_flight.push_front((index, reply));
                            fail_all(&mut in_flight, &why);
                            break;
                        }
                        None => {
                            tracing::warn!(index = resp.request_index, "unexpected answer on the message stream");
                            break;
                        }
                    },
                    Ok(None) => {
                        fail_all(&mut in_flight, "the core ended the stream");
                        break;
                    }
                    Err(status) => {
                        fail_all(&mut in_flight, &format!("{:?}: {}", status.code(), status.message()));
                        break;
                    }
                },
            }
        }
        if !jobs_open {
            return;
        }
    }
}
