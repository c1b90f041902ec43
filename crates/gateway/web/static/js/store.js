// The client's state: conversations with their messages, reactions, pins, typing and read
// state, users and presence; and how a conversation event changes it.
//
// Events come from the gateway (`/user/queue/messages`, wire JSON) or from REST catch-up
// (`EventDto`, normalized by `fromEventDto`). Per conversation `seq` is the highest event seq
// applied in order: the resume position sent on (re)subscribe. An event at or below it is a
// duplicate and dropped; one that skips ahead is reported as a gap (the caller fetches the
// missing range by REST first).

const TYPING_TTL_MS = 6000;

/** A REST `EventDto` (`{type, seq, payload: {...}}`) in the gateway's wire shape. */
export function fromEventDto(e) {
  const payload = { ...(e.payload || {}) };
  const message = payload.message;
  delete payload.message;
  return {
    ...payload,
    ...(message || {}),
    eventType: e.type,
    eventId: e.eventId,
    conversationId: e.conversationId,
    seq: e.seq,
    actorId: e.actorId,
    eventCreatedAt: e.createdAt,
  };
}

/** What `Store.apply` did with an event. */
export const Applied = Object.freeze({
  OK: 'ok',
  DUPLICATE: 'duplicate',
  GAP: 'gap',
  UNKNOWN_CONVERSATION: 'unknown-conversation',
});

export class Store extends EventTarget {
  constructor() {
    super();
    /** The signed-in user (UserDto). */
    this.me = null;
    /** userId -> UserDto (filled on demand). */
    this.users = new Map();
    /** conversationId -> conversation state (see `upsertConversation`). */
    this.conversations = new Map();
    /** userId -> {status: 'ONLINE'|'OFFLINE', lastSeenAt}. */
    this.presence = new Map();
    /** The conversation shown in the main view. */
    this.activeId = null;
    /** Source of conversation ranks (the sidebar's order). */
    this.rankCounter = 0;
  }

  /** Tells the views what changed: `{conversationId?, what}`. */
  changed(what, conversationId = null) {
    this.dispatchEvent(new CustomEvent('change', { detail: { what, conversationId } }));
  }

  /**
   * Adds or refreshes a conversation from a ConversationSummaryDto. A known conversation keeps
   * its loaded messages and its resume position; read state and counts come from the summary.
   */
  upsertConversation(summary) {
    let c = this.conversations.get(summary.conversationId);
    if (!c) {
      c = {
        id: summary.conversationId,
        seq: summary.lastSeq,
        messages: new Map(),
        reactions: new Map(),
        pins: new Set(),
        typing: new Map(),
        memberIds: [],
        rank: 0,
        loaded: false,
        hasOlder: true,
        oldestSeq: null,
      };
      this.conversations.set(c.id, c);
    }
    Object.assign(c, {
      type: summary.type,
      name: summary.name,
      topic: summary.topic,
      isPrivate: summary.isPrivate,
      settings: summary.settings,
      role: summary.role,
      lastSeq: Math.max(c.lastSeq || 0, summary.lastSeq || 0),
      seenSeq: summary.seenSeq ?? c.seenSeq ?? 0,
      unreadCount: summary.unreadCount ?? c.unreadCount ?? 0,
      mentionCount: summary.mentionCount ?? c.mentionCount ?? 0,
      updatedAt: summary.updatedAt,
      // The summary's counts include every message up to its lastSeq: replayed events at or
      // below it must not count again.
      countedThrough: Math.max(c.countedThrough || 0, summary.lastSeq || 0),
    });
    return c;
  }

  /** Conversations, most recently active first (`rank`: see `rankFromServer` and `apply`). */
  sortedConversations() {
    return [...this.conversations.values()].sort((a, b) => b.rank - a.rank);
  }

  /**
   * Ranks conversations in the order of the server's summary (most recently active first);
   * a conversation with a new message moves to the top (`apply`).
   */
  rankFromServer(summaries) {
    summaries.forEach((s, i) => {
      const c = this.conversations.get(s.conversationId);
      if (c) c.rank = this.rankCounter + summaries.length - i;
    });
    this.rankCounter += summaries.length + 1;
  }

  /** A display name: `#channel`, or the other members' names for DMs and group DMs. */
  conversationTitle(c) {
    if (c.type === 'CHANNEL') return `#${c.name || 'channel'}`;
    const others = c.memberIds.filter((id) => !this.me || id !== this.me.userId);
    if (others.length === 0) return c.memberIds.length ? this.userName(this.me.userId) : 'direct message';
    return others.map((id) => this.userName(id)).join(', ');
  }

  userName(id) {
    const u = this.users.get(id);
    return u ? u.displayName || u.username : id ? id.slice(0, 8) : '?';
  }

  /** Merges a MessageDto (REST) or a message event's fields; a newer `updatedAt` wins. */
  putMessage(c, m) {
    const old = c.messages.get(m.messageId);
    if (old && old.updatedAt && m.updatedAt && m.updatedAt < old.updatedAt) return old;
    const merged = { ...old, ...m };
    if (old && (m.replyCount === undefined || m.replyCount === null)) merged.replyCount = old.replyCount;
    c.messages.set(m.messageId, merged);
    if (!m.threadRootId && (c.oldestSeq === null || m.serverSeq < c.oldestSeq)) c.oldestSeq = m.serverSeq;
    return merged;
  }

  /** Top-level messages of a conversation (thread replies excluded), by seq. */
  timeline(c) {
    return [...c.messages.values()].filter((m) => !m.threadRootId).sort((a, b) => a.serverSeq - b.serverSeq);
  }

  /** Replies of a thread root, by seq. */
  replies(c, rootId) {
    return [...c.messages.values()].filter((m) => m.threadRootId === rootId).sort((a, b) => a.serverSeq - b.serverSeq);
  }

  /** Sets a message's reactions from REST (ReactionDto list). */
  setReactions(c, messageId, list) {
    const byEmoji = new Map();
    for (const r of list) {
      if (!byEmoji.has(r.emoji)) byEmoji.set(r.emoji, new Set());
      byEmoji.get(r.emoji).add(r.userId);
    }
    c.reactions.set(messageId, byEmoji);
  }

  reactionsOf(c, messageId) {
    return c.reactions.get(messageId) || new Map();
  }

  /** Users typing in `c` now (expired entries removed). */
  typingUsers(c) {
    const now = Date.now();
    for (const [id, until] of c.typing) if (until < now) c.typing.delete(id);
    return [...c.typing.keys()];
  }

  /**
   * Applies one event in wire shape. Returns an `Applied` value; state changes are announced
   * with `changed`.
   */
  apply(ev) {
    if (ev.eventType === 'TYPING') return this.applyTyping(ev);
    if (ev.eventType === 'PRESENCE') return this.applyPresence(ev);
    const c = this.conversations.get(ev.conversationId);
    if (!c) return Applied.UNKNOWN_CONVERSATION;
    if (typeof ev.seq !== 'number') return Applied.DUPLICATE;
    if (ev.seq <= c.seq) return Applied.DUPLICATE;
    if (ev.seq > c.seq + 1) return Applied.GAP;
    c.seq = ev.seq;
    c.lastSeq = Math.max(c.lastSeq || 0, ev.seq);
    if (ev.eventType === 'MESSAGE') c.rank = ++this.rankCounter;
    this.applyPayload(c, ev);
    this.changed(ev.eventType, c.id);
    return Applied.OK;
  }

  applyPayload(c, ev) {
    switch (ev.eventType) {
      case 'MESSAGE': {
        const m = this.putMessage(c, messageFields(ev));
        if (m.threadRootId) {
          const root = c.messages.get(m.threadRootId);
          if (root && typeof ev.threadReplyCount === 'number') root.replyCount = ev.threadReplyCount;
          else if (root) root.replyCount = (root.replyCount || 0) + 1;
        }
        const mine = this.me && m.userId === this.me.userId;
        if (!mine && !this.isWatching(c) && ev.seq > (c.countedThrough || 0)) {
          c.unreadCount = (c.unreadCount || 0) + 1;
          const mentions = m.mentions || {};
          if (mentions.channel || (mentions.userIds || []).includes(this.me && this.me.userId)) {
            c.mentionCount = (c.mentionCount || 0) + 1;
          }
        }
        c.typing.delete(m.userId);
        break;
      }
      case 'MESSAGE_EDITED':
      case 'MESSAGE_DELETED':
        this.putMessage(c, messageFields(ev));
        break;
      case 'REACTION_ADDED':
      case 'REACTION_REMOVED': {
        const byEmoji = c.reactions.get(ev.messageId) || new Map();
        c.reactions.set(ev.messageId, byEmoji);
        const users = byEmoji.get(ev.emoji) || new Set();
        if (ev.eventType === 'REACTION_ADDED') users.add(ev.userId);
        else users.delete(ev.userId);
        if (users.size) byEmoji.set(ev.emoji, users);
        else byEmoji.delete(ev.emoji);
        break;
      }
      case 'MESSAGE_PINNED':
        c.pins.add(ev.messageId);
        break;
      case 'MESSAGE_UNPINNED':
        c.pins.delete(ev.messageId);
        break;
      case 'USER_JOINED':
        if (!c.memberIds.includes(ev.userId)) c.memberIds.push(ev.userId);
        break;
      case 'USER_LEFT':
        c.memberIds = c.memberIds.filter((id) => id !== ev.userId);
        break;
      case 'CONVERSATION_UPDATED':
        if ('name' in ev) c.name = ev.name;
        if ('topic' in ev) c.topic = ev.topic;
        if ('settings' in ev) c.settings = ev.settings;
        break;
      default:
        break;
    }
  }

  /** Whether the user is looking at `c` now (its new messages are read at once). */
  isWatching(c) {
    return this.activeId === c.id && document.visibilityState === 'visible';
  }

  applyTyping(ev) {
    const c = this.conversations.get(ev.conversationId);
    if (!c || (this.me && ev.userId === this.me.userId)) return Applied.OK;
    if (ev.typing === false) c.typing.delete(ev.userId);
    else c.typing.set(ev.userId, Date.now() + TYPING_TTL_MS);
    this.changed('TYPING', c.id);
    setTimeout(() => this.changed('TYPING', c.id), TYPING_TTL_MS + 100);
    return Applied.OK;
  }

  applyPresence(ev) {
    let status = ev.status;
    if (!status && typeof ev.online === 'boolean') status = ev.online ? 'ONLINE' : 'OFFLINE';
    this.presence.set(ev.userId, { status: status || 'ONLINE', lastSeenAt: ev.lastSeenAt || null });
    this.changed('PRESENCE');
    return Applied.OK;
  }

  /** `true`/`false` when the user's presence is known, else `null`. */
  isOnline(userId) {
    const p = this.presence.get(userId);
    return p ? p.status === 'ONLINE' : null;
  }
}

/** The message fields of a message event (the event's own fields removed). */
function messageFields(ev) {
  const m = { ...ev };
  for (const k of ['eventType', 'eventId', 'seq', 'actorId', 'eventCreatedAt', 'conversationMemberIds', 'threadReplyCount', 'thread']) {
    delete m[k];
  }
  if (ev.eventType === 'MESSAGE_DELETED') m.deleted = true;
  return m;
}
