//! Authorization rules of `product.md` ("Authorization"), as pure functions.
//!
//! Every interface (REST, STOMP, gRPC) calls the core service, and the core service calls
//! these before any change; they never do I/O. Visibility rule: a non-member asking about a
//! private conversation gets [`DomainError::NotFound`] (private channels are invisible), about
//! a public channel [`DomainError::Forbidden`] (it may join).

use crate::error::DomainError;
use crate::ids::UserId;
use crate::model::{Conversation, ConversationKind, Member, MemberRole, Message};

/// The caller must be a member to read history, send, react, pin or receive events.
///
/// # Errors
/// `NotFound("conversation")` for a non-member of a private conversation,
/// `Forbidden` for a non-member of a public channel.
pub fn require_member<'a>(conv: &Conversation, member: Option<&'a Member>) -> Result<&'a Member, DomainError> {
    match member {
        Some(m) => Ok(m),
        None if conv.is_private => Err(DomainError::NotFound("conversation")),
        None => Err(DomainError::Forbidden("you are not a member of this channel; join it first".into())),
    }
}

/// May the caller see the conversation's metadata (not its history)? Members always; anyone
/// in the workspace for public channels.
///
/// # Errors
/// `NotFound("conversation")` when invisible.
pub fn require_visible(conv: &Conversation, member: Option<&Member>) -> Result<(), DomainError> {
    if member.is_some() || !conv.is_private { Ok(()) } else { Err(DomainError::NotFound("conversation")) }
}

/// Owners rename, change settings, add and remove members.
///
/// # Errors
/// As [`require_member`], then `Forbidden` for non-owners.
pub fn require_owner<'a>(conv: &Conversation, member: Option<&'a Member>) -> Result<&'a Member, DomainError> {
    let m = require_member(conv, member)?;
    if m.role == MemberRole::Owner {
        Ok(m)
    } else {
        Err(DomainError::Forbidden("only an owner of this conversation may do this".into()))
    }
}

/// Only public channels can be joined by a non-member.
///
/// # Errors
/// `NotFound` for private conversations, `Forbidden` for DMs, `Conflict` when already a member.
pub fn require_joinable(conv: &Conversation, member: Option<&Member>) -> Result<(), DomainError> {
    if member.is_some() {
        return Err(DomainError::Conflict("already a member".into()));
    }
    if conv.is_private {
        return Err(DomainError::NotFound("conversation"));
    }
    if conv.kind != ConversationKind::Channel {
        return Err(DomainError::Forbidden("only channels can be joined".into()));
    }
    Ok(())
}

/// Members can be added only to channels, by an owner (a DM has exactly two members; a
/// group DM a fixed set).
///
/// # Errors
/// As [`require_owner`]; `Forbidden` for DMs and group DMs.
pub fn require_can_add_member(conv: &Conversation, actor: Option<&Member>) -> Result<(), DomainError> {
    require_owner(conv, actor)?;
    if conv.kind != ConversationKind::Channel {
        return Err(DomainError::Forbidden("members of a DM or group DM are fixed".into()));
    }
    Ok(())
}

/// Removing `target`: anyone may leave a channel themselves; owners remove others. DMs and
/// group DMs have fixed members.
///
/// # Errors
/// As [`require_member`]; `Forbidden` otherwise.
pub fn require_can_remove_member(
    conv: &Conversation,
    actor: Option<&Member>,
    target: UserId,
) -> Result<(), DomainError> {
    let m = require_member(conv, actor)?;
    if conv.kind != ConversationKind::Channel {
        return Err(DomainError::Forbidden("members of a DM or group DM are fixed".into()));
    }
    if m.user_id == target || m.role == MemberRole::Owner {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only an owner may remove another member".into()))
    }
}

/// Authors edit their own messages; nobody edits a deleted message.
///
/// # Errors
/// `Forbidden` for anyone but the author; `Conflict` for a deleted message.
pub fn require_can_edit(msg: &Message, actor: UserId) -> Result<(), DomainError> {
    if msg.user_id != actor {
        return Err(DomainError::Forbidden("only the author may edit a message".into()));
    }
    if msg.deleted {
        return Err(DomainError::Conflict("the message is deleted".into()));
    }
    Ok(())
}

/// Authors delete their own messages; owners may delete any.
///
/// # Errors
/// `Forbidden` otherwise.
pub fn require_can_delete(msg: &Message, actor: &Member) -> Result<(), DomainError> {
    if msg.user_id == actor.user_id || actor.role == MemberRole::Owner {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only the author or an owner may delete a message".into()))
    }
}

/// Reactions must be allowed by the conversation's settings.
///
/// # Errors
/// `Forbidden` when `allow_reactions` is off.
pub fn require_reactions_allowed(conv: &Conversation) -> Result<(), DomainError> {
    if conv.settings.allow_reactions {
        Ok(())
    } else {
        Err(DomainError::Forbidden("reactions are disabled in this conversation".into()))
    }
}

/// Pins must be allowed by the conversation's settings.
///
/// # Errors
/// `Forbidden` when `allow_pins` is off.
pub fn require_pins_allowed(conv: &Conversation) -> Result<(), DomainError> {
    if conv.settings.allow_pins {
        Ok(())
    } else {
        Err(DomainError::Forbidden("pins are disabled in this conversation".into()))
    }
}

/// Thread replies must be allowed by the conversation's settings.
///
/// # Errors
/// `Forbidden` when `allow_thread` is off.
pub fn require_threads_allowed(conv: &Conversation) -> Result<(), DomainError> {
    if conv.settings.allow_thread {
        Ok(())
    } else {
        Err(DomainError::Forbidden("threads are disabled in this conversation".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, WorkspaceId};
    use crate::model::ConversationSettings;
    use crate::time::Millis;

    fn conv(kind: ConversationKind, is_private: bool) -> Conversation {
        Conversation {
            id: ConversationId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            kind,
            name: Some("general".into()),
            topic: None,
            is_private,
            created_by: UserId::new(),
            created_at: Millis(0),
            updated_at: Millis(0),
            settings: ConversationSettings::default(),
            last_seq: 0,
        }
    }

    fn member(c: &Conversation, role: MemberRole) -> Member {
        Member {
            conversation_id: c.id,
            user_id: UserId::new(),
            role,
            joined_at: Millis(0),
            delivered_seq: 0,
            seen_seq: 0,
        }
    }

    #[test]
    fn private_conversation_is_invisible_to_non_members() {
        let c = conv(ConversationKind::Channel, true);
        assert_eq!(require_member(&c, None).unwrap_err(), DomainError::NotFound("conversation"));
        assert!(require_visible(&c, None).is_err());
    }

    #[test]
    fn public_channel_non_member_is_forbidden_but_may_join() {
        let c = conv(ConversationKind::Channel, false);
        assert!(matches!(require_member(&c, None), Err(DomainError::Forbidden(_))));
        assert!(require_joinable(&c, None).is_ok());
    }

    #[test]
    fn member_cannot_remove_another_but_can_leave() {
        let c = conv(ConversationKind::Channel, false);
        let m = member(&c, MemberRole::Member);
        assert!(require_can_remove_member(&c, Some(&m), UserId::new()).is_err());
        assert!(require_can_remove_member(&c, Some(&m), m.user_id).is_ok());
        let o = member(&c, MemberRole::Owner);
        assert!(require_can_remove_member(&c, Some(&o), m.user_id).is_ok());
    }

    #[test]
    fn dm_members_are_fixed() {
        let c = conv(ConversationKind::Dm, true);
        let o = member(&c, MemberRole::Owner);
        assert!(require_can_add_member(&c, Some(&o)).is_err());
    }
}
