// Stored XSS: hostile titles, descriptions, markdown, links, icons, topics and metadata, shown
// everywhere Herald shows them — inbox, detail page, toast, critical banner, admin
// announcements with their preview and receipts — stay inert text in the real browser.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, publish, screenshot, signedInPage, startHerald } from './helpers.mjs';

let herald;
let browser;

before(async () => {
  herald = await startHerald();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await herald?.stop();
});

// Every payload sets window.__xss or opens a dialog if it ever runs.
const run = 'window.__xss=(window.__xss||0)+1;alert(1)';
const hostile = {
  title: `<img src=x onerror="${run}"><script>${run}</script>"'><svg onload="${run}">`,
  description: [
    `[a markdown link](javascript:${encodeURIComponent(run)})`,
    `[a data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)`,
    `<a href="javascript:${run}">raw link</a>`,
    `<img src=x onerror="${run}">`,
    `<iframe src="javascript:${run}"></iframe>`,
    `<svg><script>${run}</script></svg>`,
    `<details open ontoggle="${run}">x</details>`,
    `<math><mi xlink:href="javascript:${run}">m</mi></math>`,
    `<form action="javascript:${run}"><button>go</button></form>`,
    `![image](javascript:${encodeURIComponent(run)})`,
    `<style>body{display:none}</style>`,
    '**still bold**',
  ].join('\n\n'),
  topic: `<b onmouseover="${run}">topic</b>`,
  icon: `"><img src=x onerror="${run}">`,
  metadata: { [`<img src=x onerror="${run}">`]: `<script>${run}</script>`, link: `javascript:${run}` },
};

/** Asserts nothing hostile became live markup in `page`, and nothing ran. */
async function assertInert(page, where) {
  const found = await page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll('body *')) {
      for (const attr of el.attributes) {
        const v = attr.value.trim().toLowerCase();
        if (attr.name.startsWith('on')) bad.push(`${el.tagName} ${attr.name}`);
        if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(attr.name)
          && (v.startsWith('javascript:') || v.startsWith('data:text/html'))) bad.push(`${el.tagName} ${attr.name}=${v.slice(0, 30)}`);
      }
      if (['IFRAME', 'OBJECT', 'EMBED', 'FORM'].includes(el.tagName) && el.closest('[data-testid=description], .description')) {
        bad.push(el.tagName);
      }
      // Hydration data carries the title as an escaped string; a live payload would be a
      // script of its own.
      if (el.tagName === 'SCRIPT' && el.textContent.trim().startsWith('window.__xss')) bad.push('SCRIPT');
      if (el.tagName === 'STYLE' && el.closest('.description')) bad.push('STYLE');
    }
    return { bad, ran: window.__xss ?? 0, hidden: getComputedStyle(document.body).display === 'none' };
  });
  assert.deepEqual(found.bad, [], `live hostile markup on ${where}`);
  assert.equal(found.ran, 0, `a hostile payload ran on ${where}`);
  assert.equal(found.hidden, false, `a hostile style applied on ${where}`);
}

async function watchedPage(user) {
  const s = await signedInPage(browser, herald.base, user);
  const dialogs = [];
  s.page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  return { ...s, dialogs };
}

test('links other than http(s) and relative paths are refused at publishing', async () => {
  for (const link of [`javascript:${run}`, 'data:text/html,<script>alert(1)</script>', 'vbscript:msgbox(1)', ' javascript:alert(1)', 'JaVaScRiPt:alert(1)']) {
    const res = await fetch(`${herald.base}/api/notifications/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${herald.serviceToken}` },
      body: JSON.stringify({ recipients: { type: 'entity', entityRef: 'user:default/bob' }, payload: { title: 'x', link } }),
    });
    assert.equal(res.status, 400, `link ${link}`);
    assert.match((await res.json()).error.message, /link/);
  }
});

test('hostile notifications stay inert in the toast, inbox, detail page and critical banner', async () => {
  const { context, page, dialogs } = await watchedPage('bob');
  await page.locator('[data-testid=live-indicator][data-state=live]').waitFor();
  const [stored] = await publish(herald, { type: 'entity', entityRef: 'user:default/bob' }, { ...hostile, severity: 'critical' });
  // The toast, live.
  const toast = page.locator('[data-testid=toast]').filter({ hasText: '<img src=x' });
  await toast.first().waitFor({ timeout: 5_000 });
  await page.locator('[data-testid=notification-list]').filter({ hasText: '<img src=x' }).waitFor({ timeout: 5_000 });
  await page.mouse.move(10, 10);
  await page.waitForTimeout(500);
  await assertInert(page, 'the live inbox and toast');
  await screenshot(page, 'xss-inbox');

  // A fresh, server-rendered and hydrated inbox (the critical banner shows there).
  await page.goto(`${herald.base}/`);
  await hydrated(page);
  await page.locator('[data-testid=notification-list]').filter({ hasText: '<img src=x' }).waitFor();
  assert.ok((await page.locator('[data-testid=notification-list]').textContent()).includes('<script>'), 'the title shows as text');
  const bold = page.locator('[data-testid=notification-list] strong', { hasText: 'still bold' });
  assert.ok(await bold.count() > 0, 'harmless markdown still renders');
  const row = page.locator('[data-testid=notification-list] > *').filter({ hasText: '<img src=x' }).first();
  for (const el of await row.locator('*').all()) await el.hover({ timeout: 200 }).catch(() => {});
  await assertInert(page, 'the server-rendered inbox');

  // The detail page, with the metadata.
  await page.goto(`${herald.base}/notifications/${stored.id}`);
  await hydrated(page);
  await page.getByText('still bold').first().waitFor();
  await page.waitForTimeout(300);
  await assertInert(page, 'the detail page');
  await screenshot(page, 'xss-detail');

  // Without JavaScript the server's HTML alone is just as inert.
  const plain = await signedInPage(browser, herald.base, 'bob', { javaScriptEnabled: false });
  await plain.page.goto(`${herald.base}/notifications/${stored.id}`);
  const html = await plain.page.content();
  assert.ok(!/<img src="?x"? onerror/i.test(html) && !/<script>window\.__xss/.test(html), 'the server never emits the payload as markup');
  await plain.context.close();
  assert.deepEqual(dialogs, [], 'no dialog opened');
  await context.close();
});

test('hostile announcements stay inert in the composer preview, the list, the receipts and the inbox', async () => {
  const admin = await watchedPage('alice');
  await admin.page.goto(`${herald.base}/admin`);
  await hydrated(admin.page);
  await admin.page.fill('#a-title', hostile.title);
  await admin.page.fill('#a-body', hostile.description);
  await admin.page.check('input[name=audience_kind][value=chosen]');
  await admin.page.fill('#a-audience', 'user:default/carol');
  await admin.page.locator('[data-testid=preview] strong', { hasText: 'still bold' }).waitFor();
  await assertInert(admin.page, 'the composer preview');
  await admin.page.getByRole('button', { name: 'Publish now' }).click();
  await admin.page.waitForFunction(() => /Published to 1 person/.test(document.querySelector('[data-testid=composer-result]')?.textContent ?? ''));
  await admin.page.goto(`${herald.base}/admin`);
  await hydrated(admin.page);
  const row = admin.page.locator('[data-testid=announcement]').filter({ hasText: '<img src=x' });
  await row.waitFor();
  await row.getByRole('button', { name: /receipts/i }).click().catch(() => {});
  await admin.page.waitForTimeout(500);
  await assertInert(admin.page, 'the announcements list and receipts');
  await screenshot(admin.page, 'xss-admin');

  const reader = await watchedPage('carol');
  await reader.page.locator('[data-testid=notification-list]').filter({ hasText: '<img src=x' }).waitFor();
  await assertInert(reader.page, "a recipient's inbox");
  assert.deepEqual([...admin.dialogs, ...reader.dialogs], [], 'no dialog opened');
  await admin.context.close();
  await reader.context.close();
});
