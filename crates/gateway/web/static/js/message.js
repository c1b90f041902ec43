// One message as an element: author, time, text (or the deleted tombstone), edited mark,
// attachments (download links, image previews), reactions, thread summary, and actions
// (react, reply in thread, edit, delete, pin). Actions go through REST; the resulting events
// come back over STOMP and update every open window, this one included.

import { el, formatSize, formatTime, toast } from './dom.js';

/** The reaction palette. */
export const EMOJIS = ['👍', '❤️', '😂', '🎉', '👀'];

/** Object URLs of image previews by attachment id (fetched once per page). */
const previews = new Map();

/**
 * The element of message `m` of conversation `c`. `app`: `{store, api, openThread(c, rootId)}`;
 * `place`: `'timeline'` or `'thread'`.
 */
export function renderMessage(app, c, m, place) {
  const { store } = app;
  const mine = store.me && m.userId === store.me.userId;
  const pinned = c.pins.has(m.messageId);
  const node = el(
    'article',
    {
      class: `message${mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}${m.pending ? ' pending' : ''}${pinned ? ' pinned' : ''}`,
      dataset: { messageId: m.messageId, seq: m.serverSeq ?? '' },
    },
    el(
      'header',
      {},
      el('span', { class: 'author' }, store.userName(m.userId)),
      el('time', { datetime: m.createdAt || '' }, formatTime(m.createdAt)),
      m.edited && !m.deleted ? el('span', { class: 'edited', title: `edited ${formatTime(m.updatedAt)}` }, '(edited)') : null,
      pinned ? el('span', { class: 'pin-mark', title: 'pinned' }, '📌') : null,
      m.pending ? el('span', { class: 'sending' }, m.failed ? `not sent: ${m.failed}` : 'sending…') : null,
    ),
    el('div', { class: 'text' }, m.deleted ? 'This message was deleted.' : m.text),
  );
  if (!m.deleted && m.attachments && m.attachments.length) node.append(renderAttachments(app, m.attachments));
  if (!m.pending && !m.deleted) node.append(renderReactions(app, c, m));
  if (place === 'timeline' && (m.replyCount || 0) > 0) {
    node.append(
      el(
        'button',
        { class: 'link thread-count', type: 'button', onclick: () => app.openThread(c, m.messageId) },
        `${m.replyCount} ${m.replyCount === 1 ? 'reply' : 'replies'}`,
      ),
    );
  }
  if (!m.pending && !m.deleted) node.append(renderActions(app, c, m, place, mine, pinned));
  return node;
}

function renderAttachments(app, attachments) {
  return el(
    'ul',
    { class: 'attachments' },
    attachments.map((a) => {
      const link = el(
        'a',
        { href: '#', class: 'download', dataset: { attachmentId: a.attachmentId }, onclick: (e) => download(e, app, a) },
        a.name,
      );
      const item = el('li', {}, link, el('span', { class: 'size' }, ` ${formatSize(a.size)}`));
      if ((a.contentType || '').startsWith('image/') && a.size <= 4 * 1024 * 1024) item.append(preview(app, a));
      return item;
    }),
  );
}

/** The download path of an attachment (events carry no `url`, REST messages do). */
function attachmentUrl(a) {
  return a.url || `/api/v1/attachments/${a.attachmentId}`;
}

async function download(event, app, a) {
  event.preventDefault();
  try {
    const blob = await app.api.download(attachmentUrl(a));
    const url = URL.createObjectURL(blob);
    const link = el('a', { href: url, download: a.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    toast(`Download failed: ${e.message}`);
  }
}

function preview(app, a) {
  const img = el('img', { class: 'preview', alt: a.name, width: a.width || null, height: a.height || null });
  const cached = previews.get(a.attachmentId);
  if (cached) {
    img.src = cached;
  } else {
    app.api
      .download(attachmentUrl(a))
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        previews.set(a.attachmentId, url);
        img.src = url;
      })
      .catch(() => img.remove());
  }
  return img;
}

function renderReactions(app, c, m) {
  const { store } = app;
  const me = store.me && store.me.userId;
  const list = el('div', { class: 'reactions' });
  for (const [emoji, users] of store.reactionsOf(c, m.messageId)) {
    const reacted = users.has(me);
    list.append(
      el(
        'button',
        {
          type: 'button',
          class: `reaction${reacted ? ' reacted' : ''}`,
          dataset: { emoji },
          title: [...users].map((u) => store.userName(u)).join(', '),
          onclick: () => toggleReaction(app, m, emoji, reacted),
        },
        `${emoji} `,
        el('span', { class: 'count' }, String(users.size)),
      ),
    );
  }
  return list;
}

async function toggleReaction(app, m, emoji, reacted) {
  try {
    if (reacted) await app.api.unreact(m.messageId, emoji);
    else await app.api.react(m.messageId, emoji);
  } catch (e) {
    toast(`Reaction failed: ${e.message}`);
  }
}

function renderActions(app, c, m, place, mine, pinned) {
  const actions = el('div', { class: 'actions' });
  const settings = c.settings || {};
  if (settings.allowReactions !== false) {
    const key = `${place}:${m.messageId}`;
    const palette = el(
      'span',
      { class: 'palette', hidden: app.openPalette !== key },
      EMOJIS.map((emoji) =>
        el(
          'button',
          {
            type: 'button',
            class: 'emoji',
            dataset: { emoji },
            onclick: () => {
              app.openPalette = null;
              palette.hidden = true;
              const mineAlready = app.store.reactionsOf(c, m.messageId).get(emoji);
              toggleReaction(app, m, emoji, Boolean(mineAlready && mineAlready.has(app.store.me.userId)));
            },
          },
          emoji,
        ),
      ),
    );
    const toggle = () => {
      app.openPalette = app.openPalette === key ? null : key;
      palette.hidden = app.openPalette !== key;
    };
    actions.append(el('button', { type: 'button', class: 'link act-react', onclick: toggle }, 'React'), palette);
  }
  if (place === 'timeline' && settings.allowThread !== false) {
    actions.append(el('button', { type: 'button', class: 'link act-reply', onclick: () => app.openThread(c, m.messageId) }, 'Reply in thread'));
  }
  if (settings.allowPins !== false && place === 'timeline') {
    actions.append(
      el('button', { type: 'button', class: 'link act-pin', onclick: () => togglePin(app, m, pinned) }, pinned ? 'Unpin' : 'Pin'),
    );
  }
  if (mine) {
    actions.append(el('button', { type: 'button', class: 'link act-edit', onclick: (e) => startEdit(app, e.target.closest('.message'), m) }, 'Edit'));
  }
  if (mine || c.role === 'OWNER') {
    const armed = app.armedDelete === m.messageId;
    actions.append(
      el('button', { type: 'button', class: 'link act-delete', onclick: () => confirmDelete(app, m) }, armed ? 'Really delete?' : 'Delete'),
    );
  }
  return actions;
}

async function togglePin(app, m, pinned) {
  try {
    if (pinned) await app.api.unpin(m.messageId);
    else await app.api.pin(m.messageId);
  } catch (e) {
    toast(`Pin failed: ${e.message}`);
  }
}

/** Replaces the text with an editor; Enter saves (PATCH), Escape cancels. */
function startEdit(app, node, m) {
  const text = node.querySelector('.text');
  const editor = el('textarea', { class: 'editor', rows: 2, 'aria-label': 'Edit message' });
  editor.value = m.text;
  const finish = () => {
    app.editing = null;
    app.render();
  };
  const save = async () => {
    const value = editor.value.trim();
    if (!value || value === m.text) return finish();
    editor.disabled = true;
    try {
      await app.api.editMessage(m.messageId, value);
      finish();
    } catch (e) {
      editor.disabled = false;
      toast(`Edit failed: ${e.message}`);
    }
  };
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      finish();
    }
  });
  app.editing = m.messageId;
  text.replaceWith(editor);
  editor.focus();
}

/** The first click arms the button (for 4 s), the second deletes. */
async function confirmDelete(app, m) {
  if (app.armedDelete !== m.messageId) {
    app.armedDelete = m.messageId;
    app.render();
    setTimeout(() => {
      if (app.armedDelete === m.messageId) {
        app.armedDelete = null;
        app.scheduleRender();
      }
    }, 4000);
    return;
  }
  app.armedDelete = null;
  try {
    await app.api.deleteMessage(m.messageId);
  } catch (e) {
    toast(`Delete failed: ${e.message}`);
  }
  app.scheduleRender();
}
