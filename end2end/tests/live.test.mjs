// Live fan-out in the browser: toasts, the unread badge and title, tabs in sync, and
// catching up after the stream was cut.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, publish, screenshot, signIn, startHerald, watchErrors } from './helpers.mjs';

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

async function signedInTab(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${herald.base}/signin`);
  await hydrated(page);
  await signIn(page, herald.base, user);
  await page.waitForSelector('[data-testid=live-indicator][data-state=live]', { timeout: 10_000 });
  return { context, page, errors };
}

const badge = (page) => page.locator('[data-testid=unread-badge]').textContent();

test('a published notification shows a toast, the badge and the title within 2 s', async () => {
  const { context, page, errors } = await signedInTab('bob');
  const before = Number(await badge(page));
  await publish(herald, { type: 'entity', entityRef: 'user:default/bob' }, { title: 'Deploy of api finished', severity: 'high', link: '/' });
  const toast = page.locator('[data-testid=toast]', { hasText: 'Deploy of api finished' });
  await toast.waitFor({ timeout: 2_000 });
  await page.waitForFunction((n) => document.querySelector('[data-testid=unread-badge]').textContent === String(n), before + 1, { timeout: 2_000 });
  assert.match(await page.title(), new RegExp(`^\\(${before + 1}\\) `));
  // The inbox list shows it too, without a reload.
  await page.locator('[data-testid=notification-list] >> text=Deploy of api finished').waitFor({ timeout: 2_000 });
  await screenshot(page, 'toast');
  assert.deepEqual(errors, []);
  await context.close();
});

test('two tabs of one user stay in sync', async () => {
  const { context, page: first } = await signedInTab('carol');
  const second = await context.newPage();
  const secondErrors = watchErrors(second);
  await second.goto(`${herald.base}/`);
  await hydrated(second);
  await second.waitForSelector('[data-testid=live-indicator][data-state=live]');
  await publish(herald, { type: 'entity', entityRef: 'user:default/carol' }, { title: 'Review requested' });
  for (const [name, tab] of [['first', first], ['second', second]]) {
    try {
      await tab.locator('[data-testid=toast]', { hasText: 'Review requested' }).waitFor({ timeout: 2_000 });
    } catch (e) {
      const state = await tab.locator('[data-testid=live-indicator]').getAttribute('data-state');
      const toasts = await tab.locator('[data-testid=toast]').allTextContents();
      throw new Error(`${name} tab: no toast (stream ${state}; toasts: ${JSON.stringify(toasts)})`);
    }
  }
  const count = Number(await badge(second));
  await first.locator('[data-testid=toast]', { hasText: 'Review requested' }).locator('text=Mark read').click();
  await second.waitForFunction((n) => document.querySelector('[data-testid=unread-badge]').textContent === String(n), count - 1, { timeout: 2_000 });
  await second.locator('[data-testid=toast]', { hasText: 'Review requested' }).waitFor({ state: 'detached', timeout: 2_000 });
  assert.deepEqual(secondErrors, [], 'a signed-in page load hydrates cleanly');
  await context.close();
});

test('critical toasts stay, at most three show, and the rest are counted', async () => {
  const { context, page } = await signedInTab('dave');
  for (let i = 1; i <= 5; i++) {
    await publish(herald, { type: 'entity', entityRef: 'user:default/dave' }, { title: `Burst ${i}`, severity: i === 1 ? 'critical' : 'normal' });
  }
  await page.locator('[data-testid=toast-more]', { hasText: '2 more' }).waitFor({ timeout: 2_000 });
  assert.equal(await page.locator('[data-testid=toast]').count(), 3);
  assert.equal(await page.locator('[aria-live=polite][data-testid=toasts]').count(), 1);
  await context.close();
});

test('after the stream is cut and restored, the missed notifications appear', async () => {
  const { context, page } = await signedInTab('alice');
  // The server restarts: the stream drops, and what is published before the tab reconnects
  // reaches it through the replay (Last-Event-ID).
  const restarted = herald.restart();
  await page.waitForSelector('[data-testid=live-indicator][data-state=reconnecting]', { timeout: 10_000 });
  await restarted;
  await publish(herald, { type: 'entity', entityRef: 'user:default/alice' }, { title: 'Missed while offline 1' });
  await publish(herald, { type: 'broadcast' }, { title: 'Missed while offline 2' });
  for (const title of ['Missed while offline 1', 'Missed while offline 2']) {
    await page.locator('[data-testid=toast]', { hasText: title }).waitFor({ timeout: 15_000 });
  }
  await page.waitForSelector('[data-testid=live-indicator][data-state=live]', { timeout: 10_000 });
  await context.close();
});

test('browser notifications are off by default, turned on in Settings, and tagged by id', async () => {
  const context = await browser.newContext();
  await context.grantPermissions(['notifications']);
  // Record system notifications, and pretend the tab is in the background.
  await context.addInitScript(() => {
    window.__systemNotifications = [];
    const Native = window.Notification;
    window.Notification = class extends Native {
      constructor(title, options) {
        super(title, options);
        window.__systemNotifications.push({ title, tag: options?.tag });
      }
    };
    Object.defineProperty(document, 'visibilityState', { get: () => 'hidden' });
  });
  const page = await context.newPage();
  await page.goto(`${herald.base}/signin`);
  await hydrated(page);
  await signIn(page, herald.base, 'bob');
  await page.waitForSelector('[data-testid=live-indicator][data-state=live]');
  await publish(herald, { type: 'entity', entityRef: 'user:default/bob' }, { title: 'Before opting in' });
  await page.locator('[data-testid=toast]', { hasText: 'Before opting in' }).waitFor();
  assert.deepEqual(await page.evaluate(() => window.__systemNotifications), []);

  await page.click('nav >> text=Settings');
  const toggle = page.locator('[data-testid=browser-notifications]');
  await toggle.waitFor();
  await page.waitForFunction(() => !document.querySelector('[data-testid=browser-notifications]').disabled);
  assert.equal(await toggle.isChecked(), false);
  await toggle.check();
  await page.waitForFunction(() => localStorage.getItem('herald.browserNotifications') === 'on');
  const [sent] = await publish(herald, { type: 'entity', entityRef: 'user:default/bob' }, { title: 'After opting in' });
  await page.waitForFunction(() => window.__systemNotifications.length === 1);
  assert.deepEqual(await page.evaluate(() => window.__systemNotifications), [{ title: 'After opting in', tag: sent.id }]);
  await context.close();
});
