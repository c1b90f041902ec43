//! SEND: destination authorization, body validation, transaction buffering, and the three
//! application destinations.
//!
//! Every SEND is parsed and validated first ([`Prepared`]: destination, JSON shape,
//! anti-spoofing, `threadRootId`); a transactional SEND is validated when it is buffered
//! (plus conversation membership, through the member cache), so a bad frame is refused at
//! SEND time, not half-way through its COMMIT. Buffered SENDs count against
//! `max_frames_per_transaction` and the session's `max_transaction_bytes`.
//!
//! * `/app/chat`: anti-spoofing (`userId` must be the authenticated user), then
//!   `ChatService::send`; only after the commit: the ack offset on
//!   `/user/queue/notifications/private` (`status` `PERSISTED` or `DUPLICATE`) and the RECEIPT.
//! * `/app/typing`: authorized through the member list, rate limited, published as an
//!   ephemeral signal with a TTL to the other members' devices (see [`super::typing`]).
//! * `/app/ack`: raises the user's delivered/seen positions.

use chat_core::service::{SendMessage, SendOutcome};
use chat_domain::{ConversationId, DomainError, MessageId, Millis};
use chat_stomp::SendFrame;

use super::{Handled, Next, Session, StompError};
use crate::delivery::Outbound;
use crate::destinations::{SendDestination, parse_send};
use crate::json::{self, AckOffset, AckSend, ChatSend, TypingSend};

/// A SEND parsed and validated (destination, JSON body, anti-spoofing, threadRootId), ready
/// to execute now or at COMMIT. Transactions buffer these, not frames.
pub(crate) struct Prepared {
    /// The SEND's `receipt`.
    pub receipt: Option<String>,
    /// Body size, counted against `max_transaction_bytes` while buffered.
    pub body_len: usize,
    action: Action,
}

enum Action {
    Chat(SendMessage),
    Typing(TypingSend),
    Ack(AckSend),
}

impl Prepared {
    fn conversation_id(&self) -> ConversationId {
        match &self.action {
            Action::Chat(req) => req.conversation_id,
            Action::Typing(t) => t.conversation_id,
            Action::Ack(a) => a.conversation_id,
        }
    }

    /// A short description for COMMIT failure reports.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Chat(req) => match &req.client_msg_id {
                Some(id) => format!("/app/chat messageId '{}'", short(id)),
                None => "/app/chat".to_owned(),
            },
            Action::Typing(_) => "/app/typing".to_owned(),
            Action::Ack(_) => "/app/ack".to_owned(),
        }
    }
}

impl Session {
    pub(super) async fn on_send(&mut self, frame: SendFrame) -> Handled {
        let Some(tx) = frame.transaction.clone() else {
            let prepared = self.prepare(&frame)?;
            self.run_prepared(prepared).await?;
            self.receipt(frame.receipt.as_deref());
            return Ok(Next::Continue);
        };
        let Some(buffered) = self.transactions.get(&tx) else {
            return Err(StompError::new(format!("unknown transaction '{}'", short(&tx))));
        };
        let max = self.shared.cfg.max_frames_per_transaction;
        if buffered.len() >= max {
            return Err(StompError::new(format!(
                "frames per transaction limit exceeded (max_frames_per_transaction = {max})"
            )));
        }
        let budget = self.shared.cfg.max_transaction_bytes;
        if self.transaction_bytes.saturating_add(frame.body.len()) > budget {
            return Err(StompError::new(format!(
                "transaction buffer limit exceeded (max_transaction_bytes = {budget}): COMMIT or ABORT first"
            )));
        }
        // Refuse a SEND that could not be applied now, not half-way through its COMMIT.
        let prepared = self.prepare(&frame)?;
        let me = self.identity();
        let shared = &self.shared;
        shared.members.get(shared.core.as_ref(), me.user_id, prepared.conversation_id()).await.map_err(domain_error)?;
        self.transaction_bytes += prepared.body_len;
        if let Some(buffered) = self.transactions.get_mut(&tx) {
            buffered.push(prepared);
        }
        Ok(Next::Continue)
    }

    /// Authorizes the destination and parses and validates the body.
    fn prepare(&self, frame: &SendFrame) -> Result<Prepared, StompError> {
        let destination = parse_send(&frame.destination).map_err(|e| StompError::new(e.to_string()))?;
        let action = match destination {
            SendDestination::Chat => Action::Chat(self.chat_request(frame)?),
            SendDestination::Typing => Action::Typing(parse_body(frame, "/app/typing")?),
            SendDestination::Ack => Action::Ack(parse_body(frame, "/app/ack")?),
        };
        Ok(Prepared { receipt: frame.receipt.clone(), body_len: frame.body.len(), action })
    }

    /// Executes a prepared SEND (its RECEIPT is the caller's).
    pub(super) async fn run_prepared(&mut self, prepared: Prepared) -> Result<(), StompError> {
        match prepared.action {
            Action::Chat(req) => self.send_chat(req).await,
            Action::Typing(body) => self.send_typing(body).await,
            Action::Ack(body) => self.send_ack(body).await,
        }
    }

    /// The `/app/chat` body as a service request; `userId` must be the authenticated user.
    fn chat_request(&self, frame: &SendFrame) -> Result<SendMessage, StompError> {
        let me = self.identity();
        let body: ChatSend = parse_body(frame, "/app/chat")?;
        if body.user_id.is_some_and(|u| u != me.user_id) {
            return Err(StompError::new("forbidden: userId does not match the authenticated user"));
        }
        let thread_root_id = match body.thread_root_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                Some(s.parse::<MessageId>().map_err(|_| StompError::new("invalid threadRootId: expected a UUID"))?)
            }
        };
        Ok(SendMessage {
            conversation_id: body.conversation_id,
            client_msg_id: body.message_id.filter(|m| !m.is_empty()),
            text: body.text,
            kind: body.kind,
            thread_root_id,
            attachment_ids: body.attachment_ids,
        })
    }

    async fn send_chat(&mut self, req: SendMessage) -> Result<(), StompError> {
        let me = self.identity();
        let client_msg_id = req.client_msg_id.clone();
        let outcome = self.shared.core.send(me.user_id, req).await.map_err(domain_error)?;
        let status = match &outcome {
            SendOutcome::Created { .. } => "PERSISTED",
            SendOutcome::Duplicate { .. } => "DUPLICATE",
        };
        let message = outcome.message();
        let ack = AckOffset {
            conversation_id: message.conversation_id,
            user_id: me.user_id,
            acked_seq: message.server_seq,
            status,
            client_msg_id: message.client_msg_id.as_deref().or(client_msg_id.as_deref()),
            message_id: message.id.to_string(),
            acked_at: Millis::now(),
        };
        self.queue(Outbound::Notification(json::ack_offset_body(&ack)));
        Ok(())
    }

    async fn send_ack(&mut self, body: AckSend) -> Result<(), StompError> {
        let me = self.identity();
        self.shared
            .core
            .ack(me.user_id, body.conversation_id, body.delivered_seq, body.seen_seq)
            .await
            .map_err(domain_error)
    }
}

/// Parses a JSON SEND body.
fn parse_body<T: serde::de::DeserializeOwned>(frame: &SendFrame, destination: &str) -> Result<T, StompError> {
    serde_json::from_slice(&frame.body)
        .map_err(|e| StompError::new(format!("invalid {destination} body: {}", one_line(&e.to_string()))))
}

/// The ERROR message for a refusal of the core.
pub(super) fn domain_error(e: DomainError) -> StompError {
    StompError::new(one_line(&e.to_string()))
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A client-supplied id shortened for error messages.
pub(super) fn short(s: &str) -> String {
    if s.len() <= 64 {
        return s.to_owned();
    }
    let mut end = 64;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
