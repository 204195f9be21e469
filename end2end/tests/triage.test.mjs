// Triage in the inbox hub: snooze, bursts, bulk actions, keyboard, opening links, and the
// quality bar (accessibility scan, phone width, dark theme) — with and without JavaScript.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccessible as checkAccessible, hydrated, launchBrowser, publish, screenshot, signIn, signedInPage, startHerald } from './helpers.mjs';

let herald;
let browser;
const to = (user) => ({ type: 'entity', entityRef: `user:default/${user}` });

before(async () => {
  herald = await startHerald();
  browser = await launchBrowser();
  for (const user of ['carol', 'dave']) {
    await publish(herald, to(user), { title: 'Quarterly review', severity: 'normal', topic: 'planning', link: 'https://plans.example/q3' });
    for (const n of [1, 2, 3]) {
      await publish(herald, to(user), { title: `Build #${n} failed`, severity: 'high', topic: 'builds', description: `Step **test** failed on run ${n}.` });
    }
    await publish(herald, to(user), { title: 'Disk almost full', severity: 'critical', topic: 'incidents', link: 'https://pager.example/i/7' });
  }
});

after(async () => {
  await browser?.close();
  await herald?.stop();
});

async function signedIn(javaScriptEnabled, user, options = {}) {
  const { context, page } = await signedInPage(browser, herald.base, user, { javaScriptEnabled, ...options });
  if (javaScriptEnabled) await hydrated(page);
  // With JavaScript the inbox loads after the client-side redirect.
  await page.locator('[data-testid=notification-list], [data-testid=empty-state]').first().waitFor();
  return { context, page };
}

const titles = (page) => page.locator('[data-testid=notification] .title').allTextContents();
const visibleTitles = (page) => page.locator('[data-testid=notification]:visible .title').allTextContents();
const row = (page, title) => page.locator('[data-testid=notification]', { hasText: title });

const assertAccessible = (page, name) => checkAccessible(browser, page, name);

for (const javaScriptEnabled of [false, true]) {
  const user = javaScriptEnabled ? 'dave' : 'carol';
  const suffix = javaScriptEnabled ? '' : '-no-js';
  describe(javaScriptEnabled ? 'with JavaScript' : 'without JavaScript', () => {
    test('a burst of builds shows as one row with "+N more" that expands', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      const burst = page.locator('[data-testid=burst]');
      assert.equal(await burst.count(), 1);
      assert.match(await burst.locator('> summary').textContent(), /\+2 more from external:demo · builds/);
      // (The demo's own notifications follow these.)
      assert.deepEqual((await visibleTitles(page)).slice(0, 3), ['Disk almost full', 'Build #3 failed', 'Quarterly review']);
      await burst.locator('> summary').click();
      assert.deepEqual((await visibleTitles(page)).slice(0, 5), ['Disk almost full', 'Build #3 failed', 'Build #2 failed', 'Build #1 failed', 'Quarterly review']);
      const time = row(page, 'Quarterly review').locator('time');
      assert.match(await time.textContent(), /just now|min ago/);
      assert.match(await time.getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      await screenshot(page, `inbox-burst${suffix}`);
      await context.close();
    });

    test('snoozing hides a notification until its time, and it can be brought back', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      const quarterly = row(page, 'Quarterly review');
      await quarterly.locator('summary', { hasText: 'Snooze' }).click();
      await quarterly.locator('button', { hasText: 'Until tomorrow' }).click();
      await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=notification] .title')].some((e) => e.textContent === 'Quarterly review'));
      await page.goto(`${herald.base}/?view=snoozed`);
      assert.deepEqual(await titles(page), ['Quarterly review']);
      const until = await page.locator('[data-testid=snoozed-until] time').getAttribute('datetime');
      const hours = (Date.parse(until) - Date.now()) / 3_600_000;
      assert.ok(hours > 0 && hours <= 33, `tomorrow at 9:00 is ${hours} h away`);
      await screenshot(page, `inbox-snoozed${suffix}`);
      await row(page, 'Quarterly review').locator('button', { hasText: 'Unsnooze' }).click();
      await page.locator('[data-testid=empty-state]').waitFor();
      await page.goto(`${herald.base}/`);
      assert.ok((await titles(page)).includes('Quarterly review'));
      await context.close();
    });

    test('bulk actions apply to every selected row', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      await page.locator('[data-testid=burst] > summary').click();
      for (const n of [1, 2]) await row(page, `Build #${n} failed`).locator('.row-select').check();
      if (javaScriptEnabled) assert.equal(await page.locator('[data-testid=selected-count]').textContent(), '2 selected:');
      await page.selectOption('#bulk-action', 'done');
      await page.locator('[data-testid=bulk-bar] button[type=submit]').click();
      await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=notification] .title')].some((e) => /Build #[12]/.test(e.textContent)));
      assert.ok((await titles(page)).includes('Build #3 failed'));
      await page.goto(`${herald.base}/?view=done`);
      assert.deepEqual((await titles(page)).sort(), ['Build #1 failed', 'Build #2 failed']);
      // Undo, in bulk as well (the two are a burst here too).
      await page.locator('[data-testid=burst] > summary').click();
      for (const n of [1, 2]) await row(page, `Build #${n} failed`).locator('.row-select').check();
      await page.selectOption('#bulk-action', 'undone');
      await page.locator('[data-testid=bulk-bar] button[type=submit]').click();
      await page.locator('[data-testid=empty-state]').waitFor();
      await context.close();
    });

    test('opening a link goes through Herald and marks it read', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      // The target is on a network this machine cannot reach: that the browser is sent there
      // is what matters.
      const link = row(page, 'Disk almost full').locator('a.title');
      assert.equal(await link.getAttribute('title'), 'https://pager.example/i/7');
      assert.match(await link.getAttribute('href'), /^\/open\//);
      await Promise.all([page.waitForRequest('https://pager.example/i/7'), link.click()]);
      // The browser then fails to reach that host and commits its error page: a navigation
      // begun before that would be interrupted by it.
      await page.waitForURL((url) => !url.href.startsWith(herald.base));
      await page.goto(`${herald.base}/?view=unread`);
      assert.ok(!(await titles(page)).includes('Disk almost full'));
      await context.close();
    });

    test('the settings matrix and preferences save', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      await page.goto(`${herald.base}/settings`);
      const matrix = page.locator('[data-testid=settings-matrix]');
      const origin = matrix.locator('tr.origin-row[data-origin="external:demo"]');
      const toggle = origin.locator('[data-testid=setting-toggle]');
      assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
      assert.ok((await matrix.locator('tr.topic-row').allTextContents()).some((t) => t.includes('builds')));
      await toggle.click();
      await page.waitForFunction(() => document.querySelector('tr.origin-row[data-origin="external:demo"] [data-testid=setting-toggle]')?.getAttribute('aria-pressed') === 'false');
      const pref = page.locator('[data-testid=mark-read-on-open]');
      assert.equal(await pref.getAttribute('aria-pressed'), 'true');
      await pref.click();
      await page.waitForFunction(() => document.querySelector('[data-testid=mark-read-on-open]')?.getAttribute('aria-pressed') === 'false');
      await screenshot(page, `settings${suffix}`);
      // Turned off: the user receives nothing more from that origin.
      await publish(herald, to(user), { title: 'Muted build', topic: 'builds' });
      await page.goto(`${herald.base}/?view=all`);
      assert.ok(!(await titles(page)).includes('Muted build'));
      // Back on, and the preference restored, for the other tests.
      await page.goto(`${herald.base}/settings`);
      await page.locator('tr.origin-row[data-origin="external:demo"] [data-testid=setting-toggle]').click();
      await page.waitForFunction(() => document.querySelector('tr.origin-row[data-origin="external:demo"] [data-testid=setting-toggle]')?.getAttribute('aria-pressed') === 'true');
      await page.locator('[data-testid=mark-read-on-open]').click();
      await page.waitForFunction(() => document.querySelector('[data-testid=mark-read-on-open]')?.getAttribute('aria-pressed') === 'true');
      await context.close();
    });

    test('inbox, detail, settings and sign-in pass an accessibility scan', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      await assertAccessible(page, 'the inbox');
      await page.goto(`${herald.base}/notifications/${await row(page, 'Quarterly review').getAttribute('data-id')}`);
      await assertAccessible(page, 'the detail page');
      await screenshot(page, `detail${suffix}`);
      await page.goto(`${herald.base}/settings`);
      await assertAccessible(page, 'the settings');
      const visitor = await browser.newContext({ javaScriptEnabled });
      const signin = await visitor.newPage();
      await signin.goto(`${herald.base}/signin`);
      await assertAccessible(signin, 'the sign-in page');
      await screenshot(signin, `signin${suffix}`);
      await visitor.close();
      await context.close();
    });
  });
}

describe('with JavaScript only', () => {
  test('keyboard: j/k move, s saves, x selects, e marks done, / searches, ? helps', async () => {
    const { context, page } = await signedIn(true, 'dave');
    await page.keyboard.press('j');
    const current = () => page.locator('[data-testid=notification].current .title').textContent();
    assert.equal(await current(), 'Disk almost full');
    await page.keyboard.press('j');
    assert.equal(await current(), 'Build #3 failed');
    await page.keyboard.press('k');
    assert.equal(await current(), 'Disk almost full');
    await page.keyboard.press('s');
    await row(page, 'Disk almost full').locator('button', { hasText: 'Unsave' }).waitFor();
    await page.keyboard.press('x');
    assert.equal(await page.locator('[data-testid=selected-count]').textContent(), '1 selected:');
    await page.keyboard.press('x');
    assert.equal(await page.locator('[data-testid=selected-count]').textContent(), 'With selected:');
    const readButton = row(page, 'Disk almost full').locator('[data-shortcut=u]');
    const before = await readButton.textContent();
    await page.keyboard.press('u');
    await page.waitForFunction((b) => document.querySelector('[data-testid=notification].current [data-shortcut=u]')?.textContent !== b, before);
    await page.keyboard.press('j');
    await page.keyboard.press('e');
    await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=notification] .title')].some((e) => e.textContent === 'Build #3 failed'));
    await page.keyboard.press('?');
    await page.locator('[data-testid=shortcuts]').waitFor();
    await screenshot(page, 'inbox-shortcuts');
    await page.keyboard.press('Escape');
    // Closed, it stays in the document, hidden (out of sight, focus and the accessibility tree).
    await page.locator('[data-testid=shortcuts]').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('[data-testid=shortcuts] button').evaluate((b) => b.checkVisibility()), false);
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'q');
    // Typing in the search field is typing, not shortcuts.
    await page.keyboard.type('jk');
    assert.equal(await page.inputValue('#q'), 'jk');
    await context.close();
  });

  test('a personal access token is shown once, listed, used and revoked', async () => {
    const { context, page } = await signedIn(true, 'dave');
    await page.goto(`${herald.base}/settings`);
    await hydrated(page);
    await page.fill('#token-name', 'laptop CLI');
    await page.click('text=Create token');
    const secret = await page.locator('[data-testid=token-secret]').textContent();
    assert.match(secret, /^hrld_p_/);
    await page.locator('[data-testid=token]', { hasText: 'laptop CLI' }).waitFor();
    assert.match(await page.locator('[data-testid=token]', { hasText: 'laptop CLI' }).textContent(), /never/);
    const status = await fetch(`${herald.base}/api/notifications/status`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(status.status, 200, 'the token reads the inbox');
    await page.goto(`${herald.base}/settings`);
    assert.equal(await page.locator('[data-testid=token-secret]').count(), 0, 'the secret is not shown again');
    await page.locator('[data-testid=token]', { hasText: 'laptop CLI' }).locator('button', { hasText: 'Revoke' }).click();
    await page.locator('[data-testid=no-tokens]').waitFor();
    const refused = await fetch(`${herald.base}/api/notifications/status`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(refused.status, 401, 'a revoked token is refused');
    await context.close();
  });

  test('on a phone the inbox fits the width, and the dark theme follows the system', async () => {
    const { context, page } = await signedIn(true, 'dave', { viewport: { width: 375, height: 740 }, colorScheme: 'dark' });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(background, 'rgb(15, 17, 21)', 'dark background');
    await assertAccessible(page, 'the inbox in dark mode on a phone');
    await screenshot(page, 'inbox-phone-dark');
    await page.goto(`${herald.base}/settings`);
    const settingsOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(settingsOverflow <= 0, `settings scroll sideways by ${settingsOverflow}px`);
    await context.close();
  });
});

describe('single sign-on', () => {
  test('the sign-in page says when the instance uses proxy SSO', async () => {
    const sso = await startHerald({ env: { HERALD_AUTH__PROXY_HEADER: 'X-Forwarded-User', HERALD_AUTH__TRUSTED_PROXIES: '["10.1.2.3"]' } });
    try {
      const context = await browser.newContext({ javaScriptEnabled: false });
      const page = await context.newPage();
      await page.goto(`${sso.base}/`);
      await page.waitForURL(/\/signin/);
      assert.match(await page.locator('[data-testid=sso-notice]').textContent(), /single sign-on/);
      assert.equal(await page.locator('[data-testid=signin-form]').count(), 1, 'password sign-in is still offered');
      await screenshot(page, 'signin-sso');
      await context.close();
    } finally {
      await sso.stop();
    }
  });
});

describe('channels beyond the inbox', () => {
  test('with email and webhooks configured, settings offer their columns, the digest mode and a webhook', async () => {
    const other = await startHerald({ env: { HERALD_EMAIL__HOST: '127.0.0.1', HERALD_EMAIL__PORT: '1', HERALD_WEBHOOKS__PERSONAL: 'true' } });
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${other.base}/signin`);
      await hydrated(page);
      await signIn(page, other.base, 'carol');
      await page.goto(`${other.base}/settings`);
      await hydrated(page);
      const headers = await page.locator('[data-testid=settings-matrix] thead th').allTextContents();
      assert.deepEqual(headers, ['Origin / topic', 'Web', 'Email', 'Webhook']);
      await page.selectOption('[data-testid=email-mode]', 'hourly');
      await page.locator('[data-testid=email-mode]').locator('xpath=..').locator('button[type=submit]').click();
      await page.waitForTimeout(300);
      await page.reload();
      assert.equal(await page.inputValue('[data-testid=email-mode]'), 'hourly');
      await hydrated(page);
      await page.fill('#webhook-url', 'https://hooks.example.com/carol');
      await page.click('text=Save webhook');
      assert.match(await page.locator('[data-testid=webhook-secret]').textContent(), /^whsec_/);
      assert.equal(await page.locator('[data-testid=webhook-url]').textContent(), 'https://hooks.example.com/carol');
      await assertAccessible(page, 'the settings with every channel');
      await screenshot(page, 'settings-channels');
      await context.close();
    } finally {
      await other.stop();
    }
  });
});
