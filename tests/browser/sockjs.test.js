'use strict';
// The web client over SockJS's iframe-based transports with WebSocket switched off on both
// sides (the gateway's SockJS `websocket` transport disabled, `window.WebSocket` removed in
// the pages): one page uses `htmlfile` (a streaming iframe), the other `jsonp-polling`
// (script polling, sends through a form posted into an iframe). They chat both ways and an
// edit shows on the other side. A third page uses `iframe-htmlfile`, which runs sockjs-client
// inside `/ws/iframe.html`: that page loads the copy the gateway serves, not a CDN's.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

let server;
before(async () => {
  server = await h.Server.create({ CHAT_GATEWAY__SOCKJS__WEBSOCKET: 'false' });
  await server.start();
});
after(async () => {
  await h.closeBrowser();
  if (server) await server.dispose();
});

/** Removes WebSocket from the page (and its frames) before any script runs. */
const NO_WEBSOCKET = () => {
  Object.defineProperty(window, 'WebSocket', { value: undefined, configurable: true, writable: true });
};

test('htmlfile and jsonp-polling pages chat with WebSocket disabled', { timeout: 120000 }, async () => {
  const info = await (await fetch(`${server.webUrl}/ws/info`)).json();
  assert.equal(info.websocket, false, '/ws/info says the websocket transport is off');

  const s = h.suffix();
  const erin = await server.user(`erin_${s}`);
  const frank = await server.user(`frank_${s}`);
  const dm = await server.rest('POST', '/api/v1/conversations', { token: erin.token, json: { type: 'DM', memberIds: [frank.id] } });

  const erinPage = await h.openPage(server, { name: 'erin', query: '?transport=htmlfile', initScript: NO_WEBSOCKET });
  const frankPage = await h.openPage(server, { name: 'frank', query: '?transport=jsonp', initScript: NO_WEBSOCKET });
  await h.signIn(erinPage, erin.name);
  await h.signIn(frankPage, frank.name);
  assert.equal(await erinPage.evaluate(() => typeof window.WebSocket), 'undefined');
  assert.equal(await erinPage.getAttribute('#conn-status', 'data-transport'), 'htmlfile');
  assert.equal(await frankPage.getAttribute('#conn-status', 'data-transport'), 'jsonp-polling');

  for (const page of [erinPage, frankPage]) {
    await page.locator(`#conversations li[data-conversation-id="${dm.conversationId}"] button`).click();
    await page.waitForSelector('#composer:not([hidden])');
  }
  await h.sendFromComposer(erinPage, 'sent over htmlfile');
  await h.messageByText(frankPage, 'sent over htmlfile').waitFor();
  await h.sendFromComposer(frankPage, 'sent over jsonp');
  await h.messageByText(erinPage, 'sent over jsonp').waitFor();

  const mine = h.messageByText(erinPage, 'sent over htmlfile');
  await mine.hover();
  await mine.locator('.act-edit').click();
  await erinPage.fill('#messages textarea.editor', 'sent over htmlfile, edited');
  await erinPage.press('#messages textarea.editor', 'Enter');
  await h.messageByText(frankPage, 'sent over htmlfile, edited').locator('.edited').waitFor();

  // A burst in both directions arrives complete and in order on both sides.
  for (let i = 0; i < 5; i++) {
    await h.sendFromComposer(erinPage, `erin ${i}`);
    await h.sendFromComposer(frankPage, `frank ${i}`);
  }
  for (const page of [erinPage, frankPage]) {
    for (let i = 0; i < 5; i++) {
      await h.messageByText(page, `erin ${i}`).waitFor();
      await h.messageByText(page, `frank ${i}`).waitFor();
    }
    await page.waitForFunction(() => !document.querySelector('#messages .message.pending'));
    const seqs = (await h.timeline(page)).map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'no duplicates');
  }

  await h.screenshot(erinPage, 'sockjs-htmlfile-erin');
  await h.screenshot(frankPage, 'sockjs-jsonp-frank');
  assert.deepEqual([...erinPage.problems, ...frankPage.problems], [], 'no page errors');
  await erinPage.context().close();
  await frankPage.context().close();
});

test('iframe-htmlfile runs inside /ws/iframe.html, which loads the sockjs-client the gateway serves', { timeout: 120000 }, async () => {
  const s = h.suffix();
  const ivy = await server.user(`ivy_${s}`);
  const jon = await server.user(`jon_${s}`);
  const dm = await server.rest('POST', '/api/v1/conversations', { token: ivy.token, json: { type: 'DM', memberIds: [jon.id] } });
  const page = await h.openPage(server, { name: 'ivy', query: '?transport=iframe-htmlfile', initScript: NO_WEBSOCKET });
  await h.signIn(page, ivy.name);
  assert.equal(await page.getAttribute('#conn-status', 'data-transport'), 'iframe-htmlfile');
  const frame = page.frames().find((f) => new URL(f.url()).pathname.startsWith('/ws/iframe'));
  assert.ok(frame, `a frame runs /ws/iframe.html: ${page.frames().map((f) => f.url()).join(', ')}`);
  const inFrame = await frame.evaluate(() => ({
    scripts: [...document.scripts].map((x) => x.src && new URL(x.src).pathname).filter(Boolean),
    sockjs: typeof window.SockJS,
  }));
  assert.deepEqual(inFrame.scripts, ['/assets/vendor/sockjs.min.js'], 'the iframe loads the served sockjs-client');
  assert.equal(inFrame.sockjs, 'function');
  await page.locator(`#conversations li[data-conversation-id="${dm.conversationId}"] button`).click();
  await page.waitForSelector('#composer:not([hidden])');
  await server.send(jon, dm.conversationId, 'to the iframe transport');
  await h.messageByText(page, 'to the iframe transport').waitFor();
  await h.sendFromComposer(page, 'from the iframe transport');
  await page.waitForFunction(() => !document.querySelector('#messages .message.pending'));
  const stored = await server.rest('GET', `/api/v1/conversations/${dm.conversationId}/messages`, { token: jon.token });
  assert.ok(stored.some((m) => m.text === 'from the iframe transport'), 'the message sent through the iframe is stored');
  assert.deepEqual(page.problems, [], 'no page errors');
  await page.context().close();
});
