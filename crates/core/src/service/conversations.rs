//! Conversations: channels, DMs, group DMs, membership and read positions.

use std::collections::HashSet;

use chat_domain::authz;
use chat_domain::{
    Conversation, ConversationEvent, ConversationId, ConversationKind, ConversationSettings, ConversationSummary,
    DomainError, Member, MemberRole, Millis, User, UserId,
};
use chat_storage::{ConversationUpdate, NewConversation, StoreError};

use super::{ChatService, ConversationPatch, CreateChannel, ServiceResult, validate};

/// The canonical member key of a DM or group DM: sorted member ids joined by `,`.
pub fn dm_key(members: &[UserId]) -> String {
    let mut ids: Vec<String> = members.iter().map(|u| u.to_string()).collect();
    ids.sort();
    ids.dedup();
    ids.join(",")
}

impl ChatService {
    /// Creates a channel; the actor becomes its `OWNER`, `member_ids` its `MEMBER`s.
    ///
    /// # Errors
    /// `Invalid` (`name`, `topic`, `slowModeSeconds`), `NotFound("user")` for an unknown
    /// member (or one of another workspace).
    pub async fn create_channel(&self, actor: UserId, req: CreateChannel) -> ServiceResult<Conversation> {
        let name = validate::name(&req.name, self.limits())?;
        validate::topic(req.topic.as_deref(), self.limits())?;
        let settings = req.settings.unwrap_or_default();
        validate::settings(&settings)?;
        let me = self.actor_user(actor).await?;
        let others = self.resolve_members(&me, &req.member_ids).await?;
        let mut members = vec![(actor, MemberRole::Owner)];
        members.extend(others.into_iter().map(|u| (u, MemberRole::Member)));
        let new = NewConversation {
            id: ConversationId::new(),
            workspace_id: me.workspace_id,
            kind: ConversationKind::Channel,
            name: Some(name),
            topic: req.topic.filter(|t| !t.is_empty()),
            is_private: req.is_private,
            created_by: actor,
            settings,
            members,
            dm_key: None,
            at: Millis::now(),
        };
        let (conv, events) = self.store.create_conversation(&new).await?;
        self.committed_events(&events);
        Ok(conv)
    }

    /// Opens (or returns the existing) DM between the actor and `other`. Idempotent: the
    /// second call returns the same conversation with `created = false`. The opener is
    /// `OWNER`, the other `MEMBER`.
    ///
    /// # Errors
    /// `Invalid("userId")` for a DM with yourself, `NotFound("user")` for an unknown user.
    pub async fn open_dm(&self, actor: UserId, other: UserId) -> ServiceResult<(Conversation, bool)> {
        if other == actor {
            return Err(DomainError::invalid("userId", "cannot open a DM with yourself"));
        }
        let me = self.actor_user(actor).await?;
        self.resolve_members(&me, &[other]).await?;
        self.create_dm(&me, ConversationKind::Dm, vec![other]).await
    }

    /// Creates (or returns the existing) group DM of the actor and `members` (3..=
    /// `limits.max_group_dm_members` distinct users, the actor included). Idempotent per set.
    ///
    /// # Errors
    /// `Invalid("memberIds")` for a wrong size, `NotFound("user")` for an unknown user.
    pub async fn create_group_dm(&self, actor: UserId, members: Vec<UserId>) -> ServiceResult<(Conversation, bool)> {
        let mut set: HashSet<UserId> = members.iter().copied().collect();
        set.insert(actor);
        let max = self.limits().max_group_dm_members;
        if set.len() < 3 || set.len() > max {
            return Err(DomainError::invalid(
                "memberIds",
                format!("a group DM has 3..={max} distinct members including you (got {})", set.len()),
            ));
        }
        let me = self.actor_user(actor).await?;
        let others = self.resolve_members(&me, &members).await?;
        self.create_dm(&me, ConversationKind::GroupDm, others).await
    }

    async fn create_dm(
        &self,
        me: &User,
        kind: ConversationKind,
        others: Vec<UserId>,
    ) -> ServiceResult<(Conversation, bool)> {
        let mut all = vec![me.id];
        all.extend(others.iter().copied());
        let key = dm_key(&all);
        if let Some(c) = self.store.conversation_by_dm_key(&key).await? {
            return Ok((c, false));
        }
        let mut members = vec![(me.id, MemberRole::Owner)];
        members.extend(others.into_iter().map(|u| (u, MemberRole::Member)));
        let new = NewConversation {
            id: ConversationId::new(),
            workspace_id: me.workspace_id,
            kind,
            name: None,
            topic: None,
            is_private: true,
            created_by: me.id,
            settings: ConversationSettings::default(),
            members,
            dm_key: Some(key.clone()),
            at: Millis::now(),
        };
        match self.store.create_conversation(&new).await {
            Ok((conv, events)) => {
                self.committed_events(&events);
                Ok((conv, true))
            }
            Err(StoreError::Conflict(_)) => {
                // Lost a race with a concurrent open of the same DM: return the winner's.
                let c = self.store.conversation_by_dm_key(&key).await?;
                Ok((c.ok_or_else(|| DomainError::Internal("DM conflict but no DM with its key".into()))?, false))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A conversation's metadata: members always; anyone of the workspace for public
    /// channels.
    ///
    /// # Errors
    /// `NotFound("conversation")` when unknown, private to a non-member, or in another
    /// workspace.
    pub async fn conversation(&self, actor: UserId, id: ConversationId) -> ServiceResult<Conversation> {
        let (conv, member) = self.conv_and_member(actor, id).await?;
        authz::require_visible(&conv, member.as_ref())?;
        if member.is_none() {
            self.require_same_workspace(actor, &conv).await?;
        }
        Ok(conv)
    }

    /// The actor's conversations with latest seq, unread and mention counts, most recently
    /// active first.
    ///
    /// # Errors
    /// Store errors only.
    pub async fn conversations(&self, actor: UserId) -> ServiceResult<Vec<ConversationSummary>> {
        Ok(self.store.conversations_of(actor).await?)
    }

    /// Public channels of the actor's workspace, by name (at most `limits.max_page`).
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown actor.
    pub async fn public_channels(&self, actor: UserId) -> ServiceResult<Vec<Conversation>> {
        let me = self.actor_user(actor).await?;
        Ok(self.store.public_channels(me.workspace_id, self.limits().max_page).await?)
    }

    /// Renames, changes topic, privacy or settings. Owners only.
    ///
    /// # Errors
    /// As [`authz::require_owner`]; `Invalid` for bad values, for a name on a DM, or for
    /// making a DM or group DM public.
    pub async fn update_conversation(
        &self,
        actor: UserId,
        id: ConversationId,
        patch: ConversationPatch,
    ) -> ServiceResult<Conversation> {
        let (conv, member) = self.conv_and_member(actor, id).await?;
        authz::require_owner(&conv, member.as_ref())?;
        let name = match &patch.name {
            Some(_) if conv.kind == ConversationKind::Dm => {
                return Err(DomainError::invalid("name", "a DM has no name"));
            }
            Some(n) => Some(validate::name(n, self.limits())?),
            None => None,
        };
        validate::topic(patch.topic.as_deref(), self.limits())?;
        if let Some(s) = &patch.settings {
            validate::settings(s)?;
        }
        if patch.is_private == Some(false) && conv.kind != ConversationKind::Channel {
            return Err(DomainError::invalid("isPrivate", "DMs and group DMs are always private"));
        }
        let update = ConversationUpdate {
            id,
            actor,
            name,
            topic: patch.topic,
            is_private: patch.is_private,
            settings: patch.settings,
            at: Millis::now(),
        };
        let (conv, _event) = self.store.update_conversation(&update).await?;
        self.committed();
        Ok(conv)
    }

    /// Joins a public channel of the actor's workspace (as `MEMBER`).
    ///
    /// # Errors
    /// `NotFound` for private conversations (or another workspace's), `Forbidden` for DMs,
    /// `Conflict` when already a member.
    pub async fn join(&self, actor: UserId, id: ConversationId) -> ServiceResult<Conversation> {
        let (conv, member) = self.conv_and_member(actor, id).await?;
        authz::require_joinable(&conv, member.as_ref())?;
        self.require_same_workspace(actor, &conv).await?;
        self.store.add_member(id, actor, actor, MemberRole::Member, Millis::now()).await?;
        self.committed();
        self.store.conversation(id).await?.ok_or(DomainError::NotFound("conversation"))
    }

    /// Leaves a channel.
    ///
    /// # Errors
    /// As [`authz::require_can_remove_member`] (DM members are fixed: `Forbidden`).
    pub async fn leave(&self, actor: UserId, id: ConversationId) -> ServiceResult<()> {
        self.remove_member(actor, id, actor).await
    }

    /// Members of a conversation, by join time. Members only.
    ///
    /// # Errors
    /// As [`authz::require_member`].
    pub async fn members(&self, actor: UserId, id: ConversationId) -> ServiceResult<Vec<Member>> {
        self.conv_as_member(actor, id).await?;
        Ok(self.store.members(id).await?)
    }

    /// Adds a user of the workspace to a channel as `MEMBER`. Owners only.
    ///
    /// # Errors
    /// As [`authz::require_can_add_member`]; `NotFound("user")`; `Conflict` when already a
    /// member.
    pub async fn add_member(&self, actor: UserId, id: ConversationId, user: UserId) -> ServiceResult<Member> {
        let (conv, member) = self.conv_and_member(actor, id).await?;
        authz::require_can_add_member(&conv, member.as_ref())?;
        let target = self.store.user(user).await?;
        if target.is_none_or(|u| u.workspace_id != conv.workspace_id) {
            return Err(DomainError::NotFound("user"));
        }
        self.store.add_member(id, actor, user, MemberRole::Member, Millis::now()).await?;
        self.committed();
        self.store.member(id, user).await?.ok_or_else(|| DomainError::Internal("added member not found".into()))
    }

    /// Removes a member (owners), or the actor itself (leave).
    ///
    /// # Errors
    /// As [`authz::require_can_remove_member`]; `NotFound("member")` when `user` is not a
    /// member; `Conflict` when `user` is the last owner and other members remain.
    pub async fn remove_member(&self, actor: UserId, id: ConversationId, user: UserId) -> ServiceResult<()> {
        let (conv, member) = self.conv_and_member(actor, id).await?;
        authz::require_can_remove_member(&conv, member.as_ref(), user)?;
        let members = self.store.members(id).await?;
        let owners = members.iter().filter(|m| m.role == MemberRole::Owner).count();
        let target_is_owner = members.iter().any(|m| m.user_id == user && m.role == MemberRole::Owner);
        if target_is_owner && owners == 1 && members.len() > 1 {
            // A channel with members must keep an owner (who renames it, manages members).
            // Best effort across concurrent removals of two owners (checked, then removed).
            return Err(DomainError::Conflict(
                "the last owner cannot leave or be removed while other members remain".into(),
            ));
        }
        match self.store.remove_member(id, actor, user, Millis::now()).await {
            Ok(_) => {
                self.committed();
                Ok(())
            }
            Err(StoreError::NotFound(_)) => Err(DomainError::NotFound("member")),
            Err(e) => Err(e.into()),
        }
    }

    /// Raises the actor's delivered and/or seen positions (never lowers them; clamped to the
    /// conversation's latest seq). Returns the membership after the update. When the seen
    /// position rose and real-time signals are enabled, pushes the `SEEN` receipt (see
    /// [`super::realtime`]).
    ///
    /// # Errors
    /// As [`authz::require_member`]; `Invalid` for negative positions.
    pub async fn ack(
        &self,
        actor: UserId,
        conv: ConversationId,
        delivered: Option<i64>,
        seen: Option<i64>,
    ) -> ServiceResult<Member> {
        if let Some(d) = delivered {
            validate::seq(d, "deliveredSeq")?;
        }
        if let Some(s) = seen {
            validate::seq(s, "seenSeq")?;
        }
        let (conversation, before) = self.conv_as_member(actor, conv).await?;
        let after = self.store.set_read_position(conv, actor, delivered, seen, Millis::now()).await?;
        if after.seen_seq > before.seen_seq
            && let Some(rt) = &self.realtime
        {
            let members = self.store.member_ids(conv).await?;
            rt.seen(&conversation, &after, members);
        }
        Ok(after)
    }

    /// Events of a conversation with `seq > after_seq`, ascending, at most `limit`
    /// (1..=`limits.max_page`). Members only.
    ///
    /// # Errors
    /// As [`authz::require_member`]; `Invalid` (`afterSeq`, `limit`).
    pub async fn events_after(
        &self,
        actor: UserId,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> ServiceResult<Vec<ConversationEvent>> {
        validate::seq(after_seq, "afterSeq")?;
        validate::limit(limit, self.limits().max_page, "limit")?;
        self.conv_as_member(actor, conv).await?;
        Ok(self.store.events_after(conv, after_seq, limit).await?)
    }

    // ----- helpers -----

    /// Distinct users of `me`'s workspace among `ids`, without `me`.
    ///
    /// # Errors
    /// `NotFound("user")` when any is unknown or of another workspace.
    async fn resolve_members(&self, me: &User, ids: &[UserId]) -> ServiceResult<Vec<UserId>> {
        let mut seen = HashSet::new();
        let wanted: Vec<UserId> = ids.iter().copied().filter(|u| *u != me.id && seen.insert(*u)).collect();
        if wanted.is_empty() {
            return Ok(wanted);
        }
        let found = self.store.users(&wanted).await?;
        let ok: HashSet<UserId> = found.iter().filter(|u| u.workspace_id == me.workspace_id).map(|u| u.id).collect();
        if wanted.iter().any(|u| !ok.contains(u)) {
            return Err(DomainError::NotFound("user"));
        }
        Ok(wanted)
    }

    /// `NotFound("conversation")` unless the actor is of the conversation's workspace.
    async fn require_same_workspace(&self, actor: UserId, conv: &Conversation) -> ServiceResult<()> {
        let me = self.actor_user(actor).await?;
        if me.workspace_id == conv.workspace_id { Ok(()) } else { Err(DomainError::NotFound("conversation")) }
    }

    fn committed_events(&self, events: &[ConversationEvent]) {
        if !events.is_empty() {
            self.committed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_key_is_sorted_and_order_independent() {
        let a = UserId::new();
        let b = UserId::new();
        assert_eq!(dm_key(&[a, b]), dm_key(&[b, a]));
        let (x, y) = if a.to_string() < b.to_string() { (a, b) } else { (b, a) };
        assert_eq!(dm_key(&[b, a]), format!("{x},{y}"));
    }
}
