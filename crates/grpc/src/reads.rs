//! The `MessageService` extensions a remote gateway needs besides sending:
//! `UpdateReadPosition`, `GetEventsAfter` and `GetConversationMemberIds`.
//!
//! Each acts for the user the request names (a service credential) or for the token's user,
//! and goes through [`chat_core::service::ChatService`], which checks membership.

use chat_auth::Principal;
use chat_domain::ConversationId;
use tonic::Status;

use crate::Shared;
use crate::authn::{acting_user, parse_id};
use crate::convert::conversation_event;
use crate::error::domain_status;
use crate::pb::message::v1 as pb;

/// The required `conversation_id` field.
fn conversation(value: &str) -> Result<ConversationId, Status> {
    if value.trim().is_empty() {
        return Err(Status::invalid_argument("conversation_id is required"));
    }
    parse_id("conversation_id", value)
}

/// `UpdateReadPosition`: `ChatService::ack`, then the update goes to the open ack streams.
pub(crate) async fn update_read_position(
    shared: &Shared,
    p: &Principal,
    req: pb::UpdateReadPositionRequest,
) -> Result<pb::UpdateReadPositionResponse, Status> {
    let user = acting_user(p, "user_id", &req.user_id)?;
    let conv = conversation(&req.conversation_id)?;
    if req.delivered_seq.is_none() && req.seen_seq.is_none() {
        return Err(Status::invalid_argument("delivered_seq or seen_seq is required"));
    }
    let member = shared.service.ack(user, conv, req.delivered_seq, req.seen_seq).await.map_err(domain_status)?;
    // Either position moves delivered (seen implies delivered).
    let mut moved = vec![("DELIVERED", member.delivered_seq)];
    if req.seen_seq.is_some() {
        moved.push(("SEEN", member.seen_seq));
    }
    shared.hub.publish(conv, user, &moved);
    Ok(pb::UpdateReadPositionResponse {
        conversation_id: conv.to_string(),
        user_id: user.to_string(),
        delivered_seq: member.delivered_seq,
        seen_seq: member.seen_seq,
    })
}

/// `GetEventsAfter`: `ChatService::events_after` with `limit` 0 meaning the page limit.
pub(crate) async fn events_after(
    shared: &Shared,
    p: &Principal,
    req: pb::GetEventsAfterRequest,
) -> Result<pb::GetEventsAfterResponse, Status> {
    let user = acting_user(p, "user_id", &req.user_id)?;
    let conv = conversation(&req.conversation_id)?;
    let max_page = shared.service.limits().max_page;
    let limit = if req.limit == 0 { max_page } else { req.limit };
    let events = shared.service.events_after(user, conv, req.after_seq, limit).await.map_err(domain_status)?;
    Ok(pb::GetEventsAfterResponse { events: events.iter().map(conversation_event).collect(), max_page })
}

/// `GetConversationMemberIds`: the member list of `ChatService::members`, ids only.
pub(crate) async fn member_ids(
    shared: &Shared,
    p: &Principal,
    req: pb::GetConversationMemberIdsRequest,
) -> Result<pb::GetConversationMemberIdsResponse, Status> {
    let user = acting_user(p, "user_id", &req.user_id)?;
    let conv = conversation(&req.conversation_id)?;
    let members = shared.service.members(user, conv).await.map_err(domain_status)?;
    Ok(pb::GetConversationMemberIdsResponse { user_ids: members.iter().map(|m| m.user_id.to_string()).collect() })
}
