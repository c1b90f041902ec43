//! `message.v1.MessageService`: `CreateMessage` and `StreamCreateMessages` (here),
//! `StreamAckOffsets` (in [`crate::acks`]) and the extensions `UpdateReadPosition`,
//! `GetEventsAfter` and `GetConversationMemberIds` (in [`crate::reads`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use chat_auth::Principal;
use chat_core::service::{SendMessage, SendOutcome};
use chat_domain::{AttachmentId, ConversationId, Millis, UserId};
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt as _, Stream, StreamExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::Shared;
use crate::authn::{acting_user, parse_id};
use crate::convert::{conversation_event, message, message_json, timestamp};
use crate::error::{domain_status, retry_after_ms};
use crate::pb::message::v1 as pb;
use crate::pb::message::v1::message_service_server::MessageService;
use crate::pb::message::v1::{AckOffset, CreateMessageRequest, CreateMessageResponse};

/// The `MessageService` implementation.
pub(crate) struct MessageApi(pub(crate) Arc<Shared>);

/// Validates a create request into the acting user and the service input. The idempotency
/// key is `client_msg_id`, else (seed clients) `message.message_id`.
fn send_input(p: &Principal, req: CreateMessageRequest) -> Result<(UserId, SendMessage), Status> {
    let m = req.message.ok_or_else(|| Status::invalid_argument("message is required"))?;
    let actor = acting_user(p, "message.user_id", &m.user_id)?;
    if m.conversation_id.trim().is_empty() {
        return Err(Status::invalid_argument("message.conversation_id is required"));
    }
    let conversation_id = parse_id("message.conversation_id", &m.conversation_id)?;
    let thread_root_id = match m.thread_root_id.trim() {
        "" => None,
        t => Some(parse_id("message.thread_root_id", t)?),
    };
    let client_msg_id = [req.client_msg_id, m.message_id].into_iter().find(|k| !k.is_empty());
    let kind = Some(m.r#type).filter(|k| !k.is_empty());
    let text = m.text;
    let attachment_ids = req
        .attachment_ids
        .iter()
        .map(|a| parse_id("attachment_ids", a))
        .collect::<Result<Vec<AttachmentId>, Status>>()?;
    let s = SendMessage { conversation_id, client_msg_id, text, kind, thread_root_id, attachment_ids };
    Ok((actor, s))
}

/// Sends through the service (group commit) and builds the response after the commit.
async fn create(shared: &Shared, actor: UserId, req: SendMessage) -> Result<CreateMessageResponse, Status> {
    let requested_key = req.client_msg_id.clone();
    let outcome = shared.service.send(actor, req).await.map_err(domain_status)?;
    let (status, event) = match &outcome {
        SendOutcome::Created { event, .. } => ("PERSISTED", Some(conversation_event(event))),
        SendOutcome::Duplicate { .. } => ("DUPLICATE", None),
    };
    let m = outcome.message();
    let ack = AckOffset {
        conversation_id: m.conversation_id.to_string(),
        user_id: actor.to_string(),
        acked_seq: m.server_seq,
        status: status.into(),
        client_msg_id: m.client_msg_id.clone().or(requested_key).unwrap_or_default(),
        acked_at: Some(timestamp(Millis::now())),
    };
    Ok(CreateMessageResponse {
        message: Some(message(m)),
        ack_offset: Some(ack),
        success: true,
        event,
        message_json: message_json(m),
        ..Default::default()
    })
}

/// The in-stream answer to a refused request.
fn refused(index: i64, status: &Status) -> CreateMessageResponse {
    CreateMessageResponse {
        success: false,
        error_code: status.code() as i32,
        error_message: status.message().to_owned(),
        retry_after_ms: retry_after_ms(status),
        request_index: index,
        ..Default::default()
    }
}

/// Per stream: the completion signal of the latest request of each conversation, so that a
/// conversation's requests are sent one after another (their seqs follow request order) while
/// requests of different conversations proceed concurrently and share group commits.
#[derive(Default)]
struct Tails(HashMap<ConversationId, oneshot::Receiver<()>>);

impl Tails {
    /// Takes the previous request's signal for `conv` and registers the new request's.
    fn chain(&mut self, conv: ConversationId, limit: usize) -> (Option<oneshot::Receiver<()>>, oneshot::Sender<()>) {
        if self.0.len() > limit {
            // Forget conversations whose latest request is done.
            self.0.retain(|_, rx| matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        }
        let (done, next) = oneshot::channel();
        (self.0.insert(conv, next), done)
    }
}

/// Answers one stream request: validation errors at once; a send runs on its own task (so it
/// progresses while earlier responses wait for the client) after the previous request of the
/// same conversation finished.
fn answer(
    shared: &Arc<Shared>,
    p: &Principal,
    tails: &mut Tails,
    index: i64,
    req: CreateMessageRequest,
) -> BoxFuture<'static, CreateMessageResponse> {
    let (actor, input) = match send_input(p, req) {
        Ok(x) => x,
        Err(status) => return futures::future::ready(refused(index, &status)).boxed(),
    };
    let (previous, done) = tails.chain(input.conversation_id, shared.cfg.stream_window * 2);
    let shared2 = shared.clone();
    let task = tokio::spawn(async move {
        if let Some(previous) = previous {
            let _ = previous.await; // Err: the previous task ended without signalling; done too
        }
        let out = create(&shared2, actor, input).await;
        drop(done);
        out
    });
    async move {
        match task.await {
            Ok(Ok(mut resp)) => {
                resp.request_index = index;
                resp
            }
            Ok(Err(status)) => refused(index, &status),
            Err(e) => refused(index, &domain_status(chat_domain::DomainError::Internal(format!("send task: {e}")))),
        }
    }
    .boxed()
}

/// Drives one `StreamCreateMessages` call: reads requests while fewer than `window` are
/// unanswered, answers strictly in request order, and stops reading while the client does
/// not take responses (`tx` is bounded).
async fn pump(
    shared: Arc<Shared>,
    p: Principal,
    mut input: Streaming<CreateMessageRequest>,
    tx: mpsc::Sender<Result<CreateMessageResponse, Status>>,
) {
    let window = shared.cfg.stream_window;
    let mut pending: FuturesOrdered<BoxFuture<'static, CreateMessageResponse>> = FuturesOrdered::new();
    let mut tails = Tails::default();
    let mut index = 0i64;
    let mut input_open = true;
    let mut input_error = None;
    loop {
        tokio::select! {
            biased;
            Some(resp) = pending.next(), if !pending.is_empty() => {
                if tx.send(Ok(resp)).await.is_err() {
                    return; // the client went away; committed sends stay committed (idempotent)
                }
            }
            msg = input.message(), if input_open && pending.len() < window => match msg {
                Ok(Some(req)) => {
                    pending.push_back(answer(&shared, &p, &mut tails, index, req));
                    index += 1;
                }
                Ok(None) => input_open = false,
                Err(status) => {
                    input_open = false;
                    input_error = Some(status);
                }
            },
            else => break,
        }
    }
    if let Some(status) = input_error {
        let _ = tx.send(Err(status)).await;
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl MessageService for MessageApi {
    async fn create_message(
        &self,
        req: Request<CreateMessageRequest>,
    ) -> Result<Response<CreateMessageResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let (actor, input) = send_input(&p, req.into_inner())?;
        Ok(Response::new(create(&self.0, actor, input).await?))
    }

    type StreamCreateMessagesStream = ResponseStream<CreateMessageResponse>;

    async fn stream_create_messages(
        &self,
        req: Request<Streaming<CreateMessageRequest>>,
    ) -> Result<Response<Self::StreamCreateMessagesStream>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let (tx, rx) = mpsc::channel(self.0.cfg.stream_buffer);
        tokio::spawn(pump(self.0.clone(), p, req.into_inner(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type StreamAckOffsetsStream = ResponseStream<AckOffset>;

    async fn stream_ack_offsets(
        &self,
        req: Request<Streaming<AckOffset>>,
    ) -> Result<Response<Self::StreamAckOffsetsStream>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let rx = crate::acks::start(self.0.clone(), p, req.into_inner());
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn update_read_position(
        &self,
        req: Request<pb::UpdateReadPositionRequest>,
    ) -> Result<Response<pb::UpdateReadPositionResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        Ok(Response::new(crate::reads::update_read_position(&self.0, &p, req.into_inner()).await?))
    }

    async fn get_events_after(
        &self,
        req: Request<pb::GetEventsAfterRequest>,
    ) -> Result<Response<pb::GetEventsAfterResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        Ok(Response::new(crate::reads::events_after(&self.0, &p, req.into_inner()).await?))
    }

    async fn get_conversation_member_ids(
        &self,
        req: Request<pb::GetConversationMemberIdsRequest>,
    ) -> Result<Response<pb::GetConversationMemberIdsResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        Ok(Response::new(crate::reads::member_ids(&self.0, &p, req.into_inner()).await?))
    }
}
