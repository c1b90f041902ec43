// The sidebar: the signed-in user, the connection state, the list of conversations with
// unread and mention counts (and presence for direct messages), and the forms that open a
// direct message or create a channel.

import { clear, el, toast } from './dom.js';

const STATUS_TEXT = {
  connecting: 'connecting…',
  reconnecting: 'reconnecting…',
  live: 'connected',
  offline: 'offline',
};

export class Sidebar {
  /** `app`: `{store, api, openConversation, refreshConversations}`. */
  constructor(app) {
    this.app = app;
    this.list = document.getElementById('conversations');
    document.getElementById('new-dm-form').addEventListener('submit', (e) => this.createDm(e));
    document.getElementById('new-channel-form').addEventListener('submit', (e) => this.createChannel(e));
  }

  /** The connection badge: `status` from Live, with the transport in use when connected. */
  showStatus(status, transport) {
    const badge = document.getElementById('conn-status');
    badge.className = `status ${status}`;
    badge.dataset.status = status;
    badge.dataset.transport = transport || '';
    badge.textContent = status === 'live' && transport ? `${STATUS_TEXT.live} · ${transport}` : STATUS_TEXT[status] || status;
  }

  render() {
    const { store } = this.app;
    document.getElementById('me-name').textContent = store.me ? store.me.username : '';
    clear(this.list);
    for (const c of store.sortedConversations()) {
      const unread = c.unreadCount || 0;
      const mentions = c.mentionCount || 0;
      const others = c.memberIds.filter((id) => id !== store.me.userId);
      let dot = null;
      if (c.type !== 'CHANNEL' && others.length === 1) {
        const online = store.isOnline(others[0]);
        dot = el('span', {
          class: `presence ${online === null ? 'unknown' : online ? 'online' : 'offline'}`,
          title: online === null ? 'presence unknown' : online ? 'online' : 'offline',
        });
      }
      this.list.append(
        el(
          'li',
          {
            class: `${c.id === store.activeId ? 'active' : ''}${unread ? ' has-unread' : ''}`,
            dataset: { conversationId: c.id },
          },
          el(
            'button',
            { type: 'button', class: 'conv', onclick: () => this.app.openConversation(c.id) },
            dot,
            el('span', { class: 'title' }, store.conversationTitle(c)),
            mentions ? el('span', { class: 'mentions', title: 'mentions' }, `@${mentions}`) : null,
            unread ? el('span', { class: 'unread', title: 'unread messages' }, String(unread)) : null,
          ),
        ),
      );
    }
    if (store.conversations.size === 0) {
      this.list.append(el('li', { class: 'empty' }, 'No conversations yet.'));
    }
  }

  /** The user ids of comma-separated user names (exact match), or throws naming the unknown one. */
  async resolveUsers(text) {
    const names = text
      .split(',')
      .map((s) => s.trim().replace(/^@/, ''))
      .filter(Boolean);
    const ids = [];
    for (const name of names) {
      const found = await this.app.api.usersByPrefix(name);
      const user = found.find((u) => u.username === name);
      if (!user) throw new Error(`no user named ${name}`);
      this.app.store.users.set(user.userId, user);
      ids.push(user.userId);
    }
    return ids;
  }

  async createDm(event) {
    event.preventDefault();
    const form = event.target;
    try {
      const ids = (await this.resolveUsers(form.elements.usernames.value)).filter((id) => id !== this.app.store.me.userId);
      if (ids.length === 0) throw new Error('name at least one other user');
      const c = await this.app.api.createConversation({ type: ids.length === 1 ? 'DM' : 'GROUP_DM', memberIds: ids });
      form.reset();
      document.getElementById('new-conversation').open = false;
      await this.app.refreshConversations();
      await this.app.openConversation(c.conversationId);
    } catch (e) {
      toast(`Could not open the conversation: ${e.message}`);
    }
  }

  async createChannel(event) {
    event.preventDefault();
    const form = event.target;
    try {
      const ids = form.elements.usernames.value.trim() ? await this.resolveUsers(form.elements.usernames.value) : [];
      const c = await this.app.api.createConversation({
        type: 'CHANNEL',
        name: form.elements.name.value.trim(),
        memberIds: ids.filter((id) => id !== this.app.store.me.userId),
      });
      form.reset();
      document.getElementById('new-conversation').open = false;
      await this.app.refreshConversations();
      await this.app.openConversation(c.conversationId);
    } catch (e) {
      toast(`Could not create the channel: ${e.message}`);
    }
  }
}
