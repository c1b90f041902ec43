// The conversation view: header (title, topic, members with presence, pins), the message
// history with infinite scroll towards older messages (REST `beforeSeq` pages), the typing
// line, and the composer (text, attachments uploaded by REST, sent over STOMP).

import { clear, el, formatSize, throttle, toast } from './dom.js';
import { renderMessage } from './message.js';

const PAGE = 50;
/** Parallel REST reads when fetching the reactions of a page. */
const REACTION_FETCHES = 6;
/** A typing signal is repeated this often while typing, and `false` sent after this idle time. */
const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 5000;

export class ConversationView {
  /** `app`: `{store, api, live, openThread, render}`. */
  constructor(app) {
    this.app = app;
    this.list = document.getElementById('messages');
    this.composer = document.getElementById('composer');
    this.pendingUploads = [];
    this.loadingOlder = false;
    this.typingTimer = null;
    this.sendTyping = throttle((id) => app.live.typing(id, true), TYPING_REPEAT_MS);
    this.list.addEventListener('scroll', () => {
      if (this.list.scrollTop < 120) this.loadOlder();
    });
    this.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    const text = this.composer.elements.text;
    text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        this.send();
      }
    });
    text.addEventListener('input', () => this.onTyping());
    document.getElementById('file-input').addEventListener('change', (e) => this.upload(e.target));
    document.getElementById('pins-toggle').addEventListener('click', () => this.togglePins());
  }

  get conversation() {
    return this.app.store.conversations.get(this.app.store.activeId) || null;
  }

  /** Shows conversation `id`: loads its newest page, members and pins the first time. */
  async open(id) {
    const { store } = this.app;
    if (store.activeId && store.activeId !== id) this.stopTyping();
    store.activeId = id;
    this.pendingUploads = [];
    this.stick = true;
    const c = this.conversation;
    this.composer.hidden = !c;
    document.getElementById('pins').hidden = true;
    this.render();
    if (!c) return;
    if (!c.loaded) {
      try {
        await this.loadInitial(c);
      } catch (e) {
        toast(`Could not load the conversation: ${e.message}`);
      }
    }
    this.markRead(c);
    this.render();
    this.composer.elements.text.focus();
  }

  async loadInitial(c) {
    const { api, store } = this.app;
    const [page, members, pins] = await Promise.all([
      api.messages(c.id, { limit: PAGE }),
      c.memberIds.length ? null : api.members(c.id),
      api.pins(c.id),
    ]);
    if (members) {
      c.memberIds = members.map((m) => m.userId);
      await this.app.ensureUsers(c.memberIds);
    }
    for (const p of pins) c.pins.add(p.messageId);
    this.loadPresence(c);
    this.absorbPage(c, page);
    c.loaded = true;
    await this.loadReactions(c, page);
    store.changed('loaded', c.id);
  }

  /** Members' presence by REST (later changes arrive as PRESENCE signals); absent on servers without it. */
  async loadPresence(c) {
    try {
      for (const p of await this.app.api.presence(c.id)) this.app.store.applyPresence(p);
    } catch {
      // presence not served (404) or switched off (503): the dots stay grey
    }
  }

  absorbPage(c, page) {
    for (const m of page) this.app.store.putMessage(c, m);
    if (page.length < PAGE) c.hasOlder = false;
    this.app.ensureUsers(page.map((m) => m.userId));
  }

  async loadReactions(c, page) {
    const queue = page.filter((m) => !m.deleted).map((m) => m.messageId);
    const worker = async () => {
      while (queue.length) {
        const id = queue.shift();
        try {
          this.app.store.setReactions(c, id, await this.app.api.reactions(id));
        } catch {
          // a message deleted meanwhile: no reactions to show
        }
      }
    };
    await Promise.all(Array.from({ length: REACTION_FETCHES }, worker));
  }

  /** Infinite scroll: the page of messages before the oldest one loaded. */
  async loadOlder() {
    const c = this.conversation;
    if (!c || !c.loaded || !c.hasOlder || this.loadingOlder || c.oldestSeq === null) return;
    this.loadingOlder = true;
    try {
      const page = await this.app.api.messages(c.id, { beforeSeq: c.oldestSeq, limit: PAGE });
      const fromBottom = this.list.scrollHeight - this.list.scrollTop;
      this.absorbPage(c, page);
      if (page.length && page[0].serverSeq < c.oldestSeq) c.oldestSeq = page[0].serverSeq;
      await this.loadReactions(c, page);
      this.render();
      this.list.scrollTop = this.list.scrollHeight - fromBottom;
    } catch (e) {
      toast(`Could not load older messages: ${e.message}`);
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Sends the read position of the active conversation and clears its unread counts. */
  markRead(c) {
    if (!c || !this.app.store.isWatching(c)) return;
    if (c.unreadCount || c.mentionCount || (c.seenSeq || 0) < c.seq) {
      c.unreadCount = 0;
      c.mentionCount = 0;
      c.seenSeq = c.seq;
      this.app.live.ack(c.id, c.seq);
      this.app.renderSidebar();
    }
  }

  /** Re-renders the view (deferred while a message is being edited). */
  render() {
    if (this.app.editing) return;
    const c = this.conversation;
    this.renderHeader(c);
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    clear(this.list);
    if (!c) {
      this.list.append(el('p', { class: 'empty' }, 'Pick a conversation on the left, or start a new one.'));
      this.renderTyping(null);
      return;
    }
    if (c.loaded && !c.hasOlder) this.list.append(el('p', { class: 'start' }, 'This is the start of the conversation.'));
    if (c.loaded && c.hasOlder) this.list.append(el('p', { class: 'older' }, 'Scroll up for older messages'));
    const messages = this.app.store.timeline(c).concat(this.app.pendingOf(c.id, null));
    for (const m of messages) this.list.append(renderMessage(this.app, c, m, 'timeline'));
    if (atBottom || this.stick) {
      this.list.scrollTop = this.list.scrollHeight;
      this.stick = false;
    }
    this.renderTyping(c);
    this.renderPins(c);
    this.renderUploads();
  }

  renderHeader(c) {
    const { store } = this.app;
    document.getElementById('conv-title').textContent = c ? store.conversationTitle(c) : 'Pick a conversation';
    document.getElementById('conv-topic').textContent = (c && c.topic) || '';
    const members = document.getElementById('conv-members');
    clear(members);
    if (c) {
      for (const id of c.memberIds) {
        const online = store.isOnline(id);
        const state = online === null ? 'unknown' : online ? 'online' : 'offline';
        const p = store.presence.get(id);
        const title = online === false && p && p.lastSeenAt ? `last seen ${new Date(p.lastSeenAt).toLocaleString()}` : state;
        members.append(el('span', { class: `member ${state}`, dataset: { userId: id }, title }, store.userName(id)));
      }
    }
    const toggle = document.getElementById('pins-toggle');
    toggle.hidden = !c || c.pins.size === 0;
    if (c) toggle.textContent = `📌 ${c.pins.size}`;
  }

  renderTyping(c) {
    const line = document.getElementById('typing');
    const users = c ? this.app.store.typingUsers(c) : [];
    const names = users.map((u) => this.app.store.userName(u));
    line.textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  togglePins() {
    const panel = document.getElementById('pins');
    panel.hidden = !panel.hidden;
    this.renderPins(this.conversation);
  }

  renderPins(c) {
    const panel = document.getElementById('pins');
    if (panel.hidden || !c) return;
    clear(panel);
    panel.append(el('h3', {}, 'Pinned'));
    for (const id of c.pins) {
      const m = c.messages.get(id);
      panel.append(
        el(
          'p',
          { class: 'pinned-item', dataset: { messageId: id } },
          m ? `${this.app.store.userName(m.userId)}: ${m.deleted ? '(deleted)' : m.text}` : 'a message not loaded yet',
        ),
      );
    }
  }

  onTyping() {
    const c = this.conversation;
    if (!c) return;
    if (this.composer.elements.text.value.trim() === '') return this.stopTyping();
    this.sendTyping(c.id);
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    this.typingTimer = null;
    const c = this.conversation;
    if (c) this.app.live.typing(c.id, false);
  }

  /** Uploads the chosen files at once; they are attached to the next message sent. */
  async upload(input) {
    const c = this.conversation;
    const files = [...input.files];
    input.value = '';
    if (!c) return;
    for (const file of files) {
      const item = { name: file.name, size: file.size, attachment: null, error: null };
      this.pendingUploads.push(item);
      this.renderUploads();
      try {
        item.attachment = await this.app.api.upload(c.id, file);
      } catch (e) {
        item.error = e.message;
        toast(`Upload of ${file.name} failed: ${e.message}`);
      }
      this.renderUploads();
    }
  }

  renderUploads() {
    const box = document.getElementById('pending-attachments');
    clear(box);
    for (const item of this.pendingUploads) {
      const state = item.error ? `failed: ${item.error}` : item.attachment ? formatSize(item.size) : 'uploading…';
      box.append(
        el(
          'span',
          { class: `upload${item.error ? ' failed' : ''}` },
          `${item.name} (${state}) `,
          el(
            'button',
            {
              type: 'button',
              class: 'link',
              title: 'remove',
              onclick: () => {
                this.pendingUploads = this.pendingUploads.filter((u) => u !== item);
                this.renderUploads();
              },
            },
            '×',
          ),
        ),
      );
    }
  }

  /** Sends the composer's text (and finished uploads) to the active conversation. */
  send() {
    const c = this.conversation;
    const input = this.composer.elements.text;
    const text = input.value.trim();
    if (!c) return;
    if (this.pendingUploads.some((u) => !u.attachment && !u.error)) {
      toast('Wait for the uploads to finish.', 'notice');
      return;
    }
    const attachmentIds = this.pendingUploads.filter((u) => u.attachment).map((u) => u.attachment.attachmentId);
    if (!text && attachmentIds.length === 0) return;
    this.app.sendMessage(c, { text: text || attachmentNames(this.pendingUploads), threadRootId: null, attachmentIds });
    input.value = '';
    this.pendingUploads = [];
    this.stopTyping();
    this.stick = true;
    this.render();
  }
}

function attachmentNames(uploads) {
  return uploads
    .filter((u) => u.attachment)
    .map((u) => u.name)
    .join(', ');
}
