//! SEND: rate limit, transaction buffering, destination authorization, and the three
//! application destinations.
//!
//! * `/app/chat`: anti-spoofing (`userId` must be the authenticated user), then
//!   `ChatService::send`; only after the commit: the ack offset on
//!   `/user/queue/notifications/private` (`status` `PERSISTED` or `DUPLICATE`) and the RECEIPT.
//! * `/app/typing`: authorized through the member list, published as an ephemeral signal to
//!   the other members' devices (never the sender's) through the delivery streams.
//! * `/app/ack`: raises the user's delivered/seen positions.

use chat_core::service::{SendMessage, SendOutcome};
use chat_domain::{DomainError, MessageId, Millis};
use chat_pipeline::EphemeralSignal;
use chat_stomp::SendFrame;

use super::{Handled, Next, Session, StompError};
use crate::delivery::Outbound;
use crate::destinations::{SendDestination, parse_send};
use crate::json::{self, AckOffset, AckSend, ChatSend, TypingSend};

impl Session {
    pub(super) async fn on_send(&mut self, frame: SendFrame) -> Handled {
        if self.limiter.check().is_err() {
            return Err(StompError::new(format!(
                "send rate limit exceeded (send_rate_per_sec = {}, send_burst = {})",
                self.shared.cfg.send_rate_per_sec, self.shared.cfg.send_burst
            )));
        }
        // Authorize the destination before buffering, so a bad transactional SEND fails early.
        parse_send(&frame.destination).map_err(|e| StompError::new(e.to_string()))?;
        if let Some(tx) = &frame.transaction {
            let max = self.shared.cfg.max_frames_per_transaction;
            let Some(buffered) = self.transactions.get_mut(tx) else {
                return Err(StompError::new(format!("unknown transaction '{}'", short(tx))));
            };
            if buffered.len() >= max {
                return Err(StompError::new(format!(
                    "frames per transaction limit exceeded (max_frames_per_transaction = {max})"
                )));
            }
            buffered.push(frame);
            return Ok(Next::Continue);
        }
        self.process_send(frame).await
    }

    /// Executes a SEND now (outside a transaction, or at COMMIT).
    pub(super) async fn process_send(&mut self, frame: SendFrame) -> Handled {
        let receipt = frame.receipt.as_deref();
        let result = match parse_send(&frame.destination).map_err(|e| StompError::new(e.to_string()))? {
            SendDestination::Chat => self.send_chat(&frame).await,
            SendDestination::Typing => self.send_typing(&frame).await,
            SendDestination::Ack => self.send_ack(&frame).await,
        };
        result.map_err(|e| e.with_receipt(receipt))?;
        self.receipt(receipt).await;
        Ok(Next::Continue)
    }

    async fn send_chat(&mut self, frame: &SendFrame) -> Result<(), StompError> {
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
        let client_msg_id = body.message_id.filter(|m| !m.is_empty());
        let req = SendMessage {
            conversation_id: body.conversation_id,
            client_msg_id: client_msg_id.clone(),
            text: body.text,
            kind: body.kind,
            thread_root_id,
            attachment_ids: body.attachment_ids,
        };
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
        self.queue(Outbound::Notification(json::ack_offset_body(&ack))).await;
        Ok(())
    }

    async fn send_typing(&mut self, frame: &SendFrame) -> Result<(), StompError> {
        let me = self.identity();
        let body: TypingSend = parse_body(frame, "/app/typing")?;
        let shared = &self.shared;
        let members =
            shared.members.get(shared.core.as_ref(), me.user_id, body.conversation_id).await.map_err(domain_error)?;
        let others: Vec<_> = members.iter().copied().filter(|u| *u != me.user_id).collect();
        if others.is_empty() {
            return Ok(());
        }
        let signal = EphemeralSignal {
            conversation_id: Some(body.conversation_id),
            kind: "TYPING".into(),
            actor_id: me.user_id,
            payload: serde_json::json!({ "typing": body.typing }),
            exclude_connection: Some(self.id.to_string()),
            created_at: Millis::now(),
        };
        if let Err(e) =
            chat_pipeline::deliver_ephemeral(shared.registry.as_ref(), shared.streams.as_ref(), signal, &others).await
        {
            tracing::debug!(error = %e, "typing signal not delivered");
        }
        Ok(())
    }

    async fn send_ack(&mut self, frame: &SendFrame) -> Result<(), StompError> {
        let me = self.identity();
        let body: AckSend = parse_body(frame, "/app/ack")?;
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
