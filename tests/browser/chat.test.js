'use strict';
// Two people chat in the web client, each in their own browser context: a direct message,
// an edit, a reaction, a thread reply, a pin, a delete, typing, an attachment, unread counts
// and search, each seen on the other side. Then the server is stopped and started again on
// the same ports and data directory: both pages reconnect (resume position) and show the
// messages sent meanwhile, including one typed while the server was down.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

let server;
before(async () => {
  server = await h.Server.create();
  await server.start();
});
after(async () => {
  await h.closeBrowser();
  if (server) await server.dispose();
});

/** Fails the test with the pages' console errors when there are any. */
function assertNoProblems(...pages) {
  const problems = pages.flatMap((p) => p.problems);
  assert.deepEqual(problems, [], 'no page errors or console errors');
}

/** Alice opens a DM with bob from the sidebar form; bob's page gets it live and opens it. */
async function openDm(alice, bob, bobName) {
  await alice.click('#new-conversation summary');
  await alice.fill('#new-dm-form input[name=usernames]', bobName);
  await alice.click('#new-dm-form button[type=submit]');
  await alice.waitForSelector('#composer:not([hidden])');
  const dmId = await alice.evaluate(() => window.chatApp.store.activeId);
  assert.ok(dmId, 'the DM is the active conversation');
  await bob.locator(`#conversations li[data-conversation-id="${dmId}"] button`).click();
  await bob.waitForSelector('#composer:not([hidden])');
  return dmId;
}

test('two users chat: messages, edit, reaction, thread reply, pin, delete, typing, attachment, unread, search', { timeout: 180000 }, async () => {
  const s = h.suffix();
  const aliceName = `alice_${s}`;
  const bobName = `bob_${s}`;
  await server.user(bobName);

  const alice = await h.openPage(server, { name: 'alice' });
  const bob = await h.openPage(server, { name: 'bob' });
  await h.signIn(alice, aliceName, { register: true });
  await h.signIn(bob, bobName);
  const dmId = await openDm(alice, bob, bobName);

  // Messages both ways.
  await h.sendFromComposer(alice, 'hello bob');
  await h.messageByText(bob, 'hello bob').waitFor();
  await h.sendFromComposer(bob, 'hi alice');
  await h.messageByText(alice, 'hi alice').waitFor();

  // Typing: bob types without sending; alice sees the indicator.
  await bob.fill('#composer textarea', 'I am typ');
  await bob.type('#composer textarea', 'ing');
  await alice.waitForFunction((name) => document.getElementById('typing').textContent.includes(`${name} is typing`), bobName);
  await bob.fill('#composer textarea', '');

  // Edit: alice edits her message; bob sees the new text marked as edited.
  const aliceMsg = h.messageByText(alice, 'hello bob');
  await aliceMsg.hover();
  await aliceMsg.locator('.act-edit').click();
  await alice.fill('#messages textarea.editor', 'hello bob, edited');
  await alice.press('#messages textarea.editor', 'Enter');
  const edited = h.messageByText(bob, 'hello bob, edited');
  await edited.waitFor();
  await edited.locator('.edited').waitFor();

  // Reaction: bob reacts to alice's message; alice sees the count.
  await edited.hover();
  await edited.locator('.act-react').click();
  await edited.locator('.palette button[data-emoji="👍"]').click();
  const reaction = h.messageByText(alice, 'hello bob, edited').locator('.reaction[data-emoji="👍"] .count');
  await reaction.waitFor();
  assert.equal(await reaction.textContent(), '1');

  // Thread: bob replies in the thread of alice's message; alice sees the reply count and the reply.
  await edited.locator('.act-reply').click();
  await bob.waitForSelector('#side-panel:not([hidden]) .reply-form textarea');
  await bob.fill('#side-panel .reply-form textarea', 'a reply in the thread');
  await bob.press('#side-panel .reply-form textarea', 'Enter');
  await h.messageByText(bob, 'a reply in the thread', '#side-panel').waitFor();
  const count = h.messageByText(alice, 'hello bob, edited').locator('.thread-count');
  await count.waitFor();
  assert.equal(await count.textContent(), '1 reply');
  await count.click();
  await h.messageByText(alice, 'a reply in the thread', '#side-panel').waitFor();
  assert.equal(await h.messageByText(alice, 'a reply in the thread').count(), 0, 'thread replies stay out of the main timeline');

  // Pin: alice pins bob's message; bob sees the pin mark.
  const bobsOnAlice = h.messageByText(alice, 'hi alice');
  await bobsOnAlice.hover();
  await bobsOnAlice.locator('.act-pin').click();
  await h.messageByText(bob, 'hi alice').locator('.pin-mark').waitFor();
  await bob.waitForSelector('#pins-toggle:not([hidden])');

  // Delete: bob deletes a message of his; alice sees the tombstone.
  await h.sendFromComposer(bob, 'this one goes away');
  await h.messageByText(alice, 'this one goes away').waitFor();
  const doomed = h.messageByText(bob, 'this one goes away');
  await doomed.hover();
  await doomed.locator('.act-delete').click();
  await doomed.locator('.act-delete', { hasText: 'Really delete?' }).click();
  await alice.waitForFunction(() =>
    [...document.querySelectorAll('#messages .message.deleted .text')].some((n) => n.textContent === 'This message was deleted.'),
  );
  assert.equal(await h.messageByText(alice, 'this one goes away').count(), 0);

  // Attachment: alice uploads a file and sends it; bob downloads the same bytes.
  const content = `attachment body ${h.suffix()}\n`;
  await alice.setInputFiles('#file-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(content) });
  await alice.waitForFunction(() => /notes\.txt \(\d/.test(document.getElementById('pending-attachments').textContent));
  await h.sendFromComposer(alice, 'here is the file');
  const withFile = h.messageByText(bob, 'here is the file');
  await withFile.waitFor();
  const [download] = await Promise.all([bob.waitForEvent('download'), withFile.locator('a.download', { hasText: 'notes.txt' }).click()]);
  assert.equal(download.suggestedFilename(), 'notes.txt');
  const stream = await download.createReadStream();
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString('utf8'), content, 'downloaded bytes equal the upload');

  // Unread counts: alice creates a channel with bob and posts while bob looks at the DM.
  await alice.click('#new-conversation summary');
  await alice.fill('#new-channel-form input[name=name]', `general-${s}`);
  await alice.fill('#new-channel-form input[name=usernames]', bobName);
  await alice.click('#new-channel-form button[type=submit]');
  await alice.waitForFunction((dm) => window.chatApp.store.activeId && window.chatApp.store.activeId !== dm, dmId);
  const channelId = await alice.evaluate(() => window.chatApp.store.activeId);
  await h.sendFromComposer(alice, 'channel message one');
  await h.sendFromComposer(alice, 'channel message two');
  const badge = bob.locator(`#conversations li[data-conversation-id="${channelId}"] .unread`);
  await bob.waitForFunction(
    (id) => {
      const n = document.querySelector(`#conversations li[data-conversation-id="${id}"] .unread`);
      return n && n.textContent === '2';
    },
    channelId,
  );
  await bob.locator(`#conversations li[data-conversation-id="${channelId}"] button`).click();
  await h.messageByText(bob, 'channel message two').waitFor();
  await badge.waitFor({ state: 'detached' });

  // Search: the messages are indexed within about a second (search.refresh_interval_ms), so
  // the search is submitted again until they show up.
  let searchText = '';
  const searchDeadline = Date.now() + 20000;
  while (!/channel message two/.test(searchText)) {
    assert.ok(Date.now() < searchDeadline, `search finds the channel messages within 20 s; panel: ${searchText}`);
    await bob.fill('#search-form input[name=q]', 'channel');
    await bob.press('#search-form input[name=q]', 'Enter');
    await bob.waitForFunction(() => {
      const body = document.getElementById('side-body');
      return body && (body.querySelector('.search-results') || body.querySelector('.search-unavailable') || /No messages found/.test(body.textContent));
    });
    searchText = await bob.textContent('#side-body');
    if (!/channel message two/.test(searchText)) await new Promise((r) => setTimeout(r, 300));
  }
  console.log(`search panel: ${searchText.replace(/\s+/g, ' ').slice(0, 200)}`);
  assert.ok(/channel message one/.test(searchText), `both channel messages found: ${searchText}`);

  // Both back in the DM for the screenshots; the sidebar marks it as the open one.
  for (const page of [alice, bob]) {
    await page.locator(`#conversations li[data-conversation-id="${dmId}"] button`).click();
    await page.waitForSelector(`#conversations li.active[data-conversation-id="${dmId}"]`);
    await h.messageByText(page, 'here is the file').waitFor();
  }
  await h.screenshot(alice, 'chat-alice');
  await h.screenshot(bob, 'chat-bob');
  assertNoProblems(alice, bob);
  await alice.context().close();
  await bob.context().close();
});

test('the pages survive a server restart and show the messages sent meanwhile', { timeout: 180000 }, async () => {
  const s = h.suffix();
  const carolName = `carol_${s}`;
  const daveName = `dave_${s}`;
  await server.user(carolName);
  const dave = await server.user(daveName);
  const carolPage = await h.openPage(server, { name: 'carol' });
  const davePage = await h.openPage(server, { name: 'dave' });
  await h.signIn(carolPage, carolName);
  await h.signIn(davePage, daveName);
  const dmId = await openDm(carolPage, davePage, daveName);
  await h.sendFromComposer(carolPage, 'before the restart');
  await h.messageByText(davePage, 'before the restart').waitFor();
  const connectsBefore = await carolPage.evaluate(() => window.chatApp.live.connects);
  // Carol's reconnect attempts are held (closed at once) until dave's messages are stored,
  // so that they can only reach her page through the resume replay.
  let hold = true;
  await carolPage.routeWebSocket(/\/ws\/websocket$/, (ws) => {
    if (hold) ws.close({ code: 1011, reason: 'held by the test' });
    else ws.connectToServer();
  });

  // Stop: both pages notice and try to reconnect.
  await server.stop();
  for (const page of [carolPage, davePage]) {
    await page.waitForFunction(() => document.getElementById('conn-status').dataset.status !== 'live', null, { timeout: h.ms(20000) });
  }
  // Carol types while the server is down: the message waits in the outbox, shown as sending.
  await h.sendFromComposer(carolPage, 'typed while the server was down');
  await h.messageByText(carolPage, 'typed while the server was down').locator('.sending').waitFor();

  // Start again on the same ports and data; dave sends over REST at once (before the pages
  // are back, their reconnect backs off for a second or more).
  await server.start();
  const meanwhile = ['meanwhile one', 'meanwhile two', 'meanwhile three'];
  for (const text of meanwhile) await server.send(dave, dmId, text);
  assert.notEqual(await carolPage.getAttribute('#conn-status', 'data-status'), 'live', 'carol is still held offline');
  hold = false;

  for (const page of [carolPage, davePage]) {
    await h.waitLive(page, h.ms(60000));
    for (const text of meanwhile) await h.messageByText(page, text).waitFor({ timeout: h.ms(20000) });
  }
  await h.messageByText(davePage, 'typed while the server was down').waitFor({ timeout: h.ms(20000) });
  await carolPage.waitForFunction(() => !document.querySelector('#messages .message.pending'));

  const carolSeqs = (await h.timeline(carolPage)).map((m) => m.seq);
  assert.deepEqual(carolSeqs, [...carolSeqs].sort((a, b) => a - b), 'the timeline is in seq order');
  assert.equal(new Set(carolSeqs).size, carolSeqs.length, 'no message is shown twice');
  const texts = (await h.timeline(davePage)).map((m) => m.text);
  assert.equal(texts.filter((t) => t === 'typed while the server was down').length, 1, 'the message sent from the outbox is stored once');
  const live = await carolPage.evaluate(() => {
    const l = window.chatApp.live;
    return { connects: l.connects, resume: l.lastResume, replayed: l.lastReplayCount };
  });
  assert.ok(live.connects > connectsBefore, `the page reconnected (${JSON.stringify(live)})`);
  assert.ok(live.resume.includes(`${dmId}:`), `the resubscription carried the DM's resume position: ${live.resume}`);
  assert.equal(live.replayed, meanwhile.length, 'the messages sent meanwhile came in the resume replay');

  await h.screenshot(carolPage, 'restart-carol');
  await h.screenshot(davePage, 'restart-dave');
  assertNoProblems(carolPage, davePage);
  await carolPage.context().close();
  await davePage.context().close();
});

test('history scrolls back page by page to the start of the conversation', { timeout: 120000 }, async () => {
  const s = h.suffix();
  const gina = await server.user(`gina_${s}`);
  const hank = await server.user(`hank_${s}`);
  const dm = await server.rest('POST', '/api/v1/conversations', { token: gina.token, json: { type: 'DM', memberIds: [hank.id] } });
  const total = 130;
  for (let i = 1; i <= total; i++) await server.send(i % 2 ? gina : hank, dm.conversationId, `history ${i}`);

  const page = await h.openPage(server, { name: 'hank' });
  await h.signIn(page, hank.name);
  // The sidebar shows gina's 65 messages as unread before the conversation is opened.
  const unread = page.locator(`#conversations li[data-conversation-id="${dm.conversationId}"] .unread`);
  await unread.waitFor();
  assert.equal(await unread.textContent(), String(total / 2));
  await page.locator(`#conversations li[data-conversation-id="${dm.conversationId}"] button`).click();
  await h.messageByText(page, `history ${total}`).waitFor();
  await unread.waitFor({ state: 'detached' });
  const first = await h.timeline(page);
  assert.equal(first.length, 50, 'the newest page of 50');
  assert.equal(first[0].text, `history ${total - 49}`);

  // Scrolling to the top loads older pages until the start.
  for (let i = 0; i < 10 && !(await page.locator('#messages .start').count()); i++) {
    await page.evaluate(() => {
      document.getElementById('messages').scrollTop = 0;
    });
    await page.waitForFunction((n) => document.querySelectorAll('#messages .message').length > n || document.querySelector('#messages .start'), (await h.timeline(page)).length);
  }
  await page.locator('#messages .start').waitFor();
  const all = await h.timeline(page);
  assert.deepEqual(
    all.map((m) => m.text),
    Array.from({ length: total }, (_, i) => `history ${i + 1}`),
    'every message once, oldest first',
  );
  await h.screenshot(page, 'history-hank');
  assert.deepEqual(page.problems, [], 'no page errors');
  await page.context().close();
});
