// The admin console's operations: service tokens, deliveries and the directory — and that
// nobody else gets in, whatever they send.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { assertAccessible, hydrated, launchBrowser, publish, screenshot, signIn, signedInPage, startHerald } from './helpers.mjs';

let herald;
let browser;
let hook;
let hookFails = true;

before(async () => {
  // A webhook receiver that refuses until told otherwise.
  hook = createServer((req, res) => {
    req.resume();
    res.statusCode = hookFails ? 500 : 204;
    res.end();
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${hook.address().port}/hook`;
  herald = await startHerald({
    env: {
      HERALD_WEBHOOKS__HOOKS: `[{name="ops", url="${url}", secret="ops-secret-1"}]`,
      HERALD_DELIVERY__MAX_ATTEMPTS: '1',
      HERALD_DELIVERY__POLL_MS: '100',
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await herald?.stop();
  hook?.close();
});

function signedIn(user, javaScriptEnabled = true) {
  return signedInPage(browser, herald.base, user, { javaScriptEnabled });
}

const SERVER_FUNCTIONS = [
  ['admin/overview', { status: '', channel: '' }],
  ['admin/tokens/create', { name: 'external:sneaky' }],
  ['admin/tokens/revoke', { id: 'x' }],
  ['admin/deliveries/retry', { id: '' }],
  ['admin/directory/import', { yaml: 'kind: User\nmetadata: {name: mallory}\nspec: {}' }],
  ['admin/announcements', {}],
  ['admin/announcements/save', {
    id: '', title: 'Sneaky', body: '', link: '', severity: 'critical', topic: '', audience_kind: 'everyone',
    audience: '', excluded: '', publish_at: '', expires_at: '', intent: 'publish',
  }],
  ['admin/announcements/withdraw', { id: 'x' }],
  ['admin/announcements/preview', { body: '**x**' }],
  ['admin/announcements/reach', { everyone: 'true', audience: '', excluded: '' }],
  ['admin/announcements/receipts', { id: 'x' }],
  ['admin/directory/search', { q: 'al' }],
];

describe('the admin console', () => {
  test('a non-admin gets 403 from the page and every admin server function; a visitor 401', async () => {
    const { context, page } = await signedIn('bob', false);
    const res = await page.goto(`${herald.base}/admin`);
    assert.equal(res.status(), 403);
    await page.locator('[data-testid=admins-only]').waitFor();
    assert.equal(await page.locator('nav a[href="/admin"]').count(), 0, 'no admin navigation');
    for (const [fn, form] of SERVER_FUNCTIONS) {
      const r = await context.request.post(`${herald.base}/api/${fn}`, { form });
      assert.equal(r.status(), 403, `${fn} as bob`);
    }
    for (const [fn, form] of SERVER_FUNCTIONS) {
      const r = await browser.newContext().then((c) => c.request.post(`${herald.base}/api/${fn}`, { form }));
      assert.equal(r.status(), 401, `${fn} as a visitor`);
    }
    const users = await herald.cli(['user', 'list']);
    assert.ok(!users.includes('mallory'), 'nothing was imported');
    const inbox = await context.request.get(`${herald.base}/api/notifications/notifications`);
    assert.ok(!(await inbox.text()).includes('Sneaky'), 'nothing was announced');
    await context.close();
  });

  test('service tokens are created (shown once), used and revoked', async () => {
    const { context, page } = await signedIn('alice');
    await page.goto(`${herald.base}/admin`);
    await hydrated(page);
    await page.fill('#service-name', 'external:nightly');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.locator('[data-testid=service-token-secret]').textContent();
    assert.match(secret, /^hrld_s_/);
    const row = page.locator('[data-testid=service-token]', { hasText: 'external:nightly' });
    await row.waitFor();
    const send = (token) => fetch(`${herald.base}/api/notifications/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ recipients: { type: 'entity', entityRef: 'user:default/bob' }, payload: { title: 'Nightly build passed' } }),
    });
    assert.equal((await send(secret)).status, 200);
    await row.locator('button', { hasText: 'Revoke' }).click();
    await page.locator('[data-testid=service-token]', { hasText: 'external:nightly' }).locator('text=revoked').waitFor();
    assert.equal((await send(secret)).status, 401, 'a revoked token is refused');
    await context.close();
  });

  test('dead deliveries show their error and can be retried', async () => {
    await publish(herald, { type: 'entity', entityRef: 'user:default/carol' }, { title: 'For the ops hook' });
    const { context, page } = await signedIn('alice');
    let dead;
    for (let i = 0; i < 50 && !dead; i++) {
      await page.goto(`${herald.base}/admin?status=dead&channel=Webhook`);
      dead = await page.locator('[data-testid=delivery][data-status=dead]').count();
      if (!dead) await page.waitForTimeout(200);
    }
    const row = page.locator('[data-testid=delivery]').first();
    assert.match(await row.textContent(), /500/);
    await screenshot(page, 'admin-deliveries');
    hookFails = false;
    await hydrated(page);
    await row.locator('button', { hasText: 'Retry' }).click();
    let delivered = 0;
    for (let i = 0; i < 50 && !delivered; i++) {
      await page.goto(`${herald.base}/admin?status=delivered&channel=Webhook`);
      delivered = await page.locator('[data-testid=delivery][data-status=delivered]').count();
      if (!delivered) await page.waitForTimeout(200);
    }
    assert.ok(delivered >= 1, 'delivered after the retry');
    await context.close();
  });

  test('the directory lists users, admins and groups, and imports catalog YAML', async () => {
    const { context, page } = await signedIn('alice');
    await page.goto(`${herald.base}/admin`);
    await hydrated(page);
    assert.match(await page.locator('[data-testid=user][data-ref="user:default/alice"]').textContent(), /admin/);
    assert.doesNotMatch(await page.locator('[data-testid=user][data-ref="user:default/bob"]').textContent(), /admin/);
    assert.match(await page.locator('[data-testid=group][data-ref="group:default/herald-admins"]').textContent(), /user:default\/alice/);
    await page.fill('[data-testid=catalog-yaml]', 'kind: User\nmetadata: {name: erin}\nspec: {profile: {displayName: Erin, email: erin@example.com}}\n');
    const importButton = page.getByRole('button', { name: 'Import', exact: true });
    await importButton.click();
    await page.waitForFunction(() => /Imported/.test(document.querySelector('[data-testid=import-result]')?.textContent ?? ''));
    assert.match(await page.locator('[data-testid=import-result]').textContent(), /Imported 1 users and 0 groups/);
    await page.locator('[data-testid=user][data-ref="user:default/erin"]').waitFor();
    await page.fill('[data-testid=catalog-yaml]', 'kind: User\nmetadata: {}\n');
    await importButton.click();
    await page.waitForFunction(() => !/Imported/.test(document.querySelector('[data-testid=import-result]')?.textContent ?? 'Imported'));
    assert.match(await page.locator('[data-testid=import-result]').textContent(), /\S/, 'a bad file says what is wrong');
    await assertAccessible(browser, page, 'the admin console');
    await screenshot(page, 'admin');
    await context.close();
  });
});

/** A user's inbox page with the live stream connected. */
async function watching(user, javaScriptEnabled = true) {
  const s = await signedIn(user, javaScriptEnabled);
  if (javaScriptEnabled) await s.page.locator('[data-testid=live-indicator][data-state=live]').waitFor();
  return s;
}

async function compose(page, { title, body = '', severity = 'normal', audience = '', excluded = '' }) {
  await page.goto(`${herald.base}/admin`);
  await hydrated(page);
  await page.fill('#a-title', title);
  if (body) await page.fill('#a-body', body);
  await page.selectOption('#a-severity', severity);
  if (audience) {
    await page.check('input[name=audience_kind][value=chosen]');
    await page.fill('#a-audience', audience);
    if (excluded) await page.fill('#a-excluded', excluded);
  } else {
    await page.check('input[name=audience_kind][value=everyone]');
  }
}

describe('announcements', () => {
  test('an admin previews and sends to a group: a member gets the toast, a non-member does not; receipts follow', async () => {
    const admin = await signedIn('alice');
    const member = await watching('carol');
    const outsider = await watching('bob');
    await compose(admin.page, {
      title: 'Frontend freeze on Friday',
      body: 'Merges **pause** at 17:00. <script>window.hacked = 1</script>',
      audience: 'group:default/frontend',
      excluded: 'user:default/dave',
    });
    await admin.page.locator('[data-testid=preview] strong').waitFor();
    assert.equal(await admin.page.locator('[data-testid=preview] strong').textContent(), 'pause');
    assert.equal(await admin.page.locator('[data-testid=preview] script').count(), 0, 'the preview is sanitized');
    await admin.page.waitForFunction(() => document.querySelector('[data-testid=reach]')?.textContent === 'Will reach 1 person.');
    await admin.page.fill('#a-search', 'front');
    await screenshot(admin.page, 'admin-composer');
    await admin.page.getByRole('button', { name: 'Publish now' }).click();
    await admin.page.waitForFunction(() => /Published to 1 person/.test(document.querySelector('[data-testid=composer-result]')?.textContent ?? ''));
    const toast = member.page.locator('[data-testid=toast]', { hasText: 'Frontend freeze on Friday' });
    await toast.waitFor({ timeout: 10_000 });
    await outsider.page.waitForTimeout(1500);
    assert.equal(await outsider.page.locator('[data-testid=toast]', { hasText: 'Frontend freeze' }).count(), 0, 'not for non-members');
    assert.equal(await member.page.evaluate(() => window.hacked), undefined);

    const row = admin.page.locator('[data-testid=announcement]', { hasText: 'Frontend freeze on Friday' });
    await row.waitFor();
    assert.equal(await row.getAttribute('data-state'), 'published');
    assert.equal(await row.locator('[data-testid=read-count]').textContent(), '0 of 1');
    await toast.locator('button', { hasText: 'Mark read' }).click();
    for (let i = 0; i < 50; i++) {
      await admin.page.reload();
      if ((await row.locator('[data-testid=read-count]').textContent()) === '1 of 1') break;
      await admin.page.waitForTimeout(200);
    }
    assert.equal(await row.locator('[data-testid=read-count]').textContent(), '1 of 1');
    await hydrated(admin.page);
    await row.locator('button', { hasText: 'Read receipts' }).click();
    assert.match(await admin.page.locator('[data-testid=receipts-read]').textContent(), /user:default\/carol/);
    for (const s of [admin, member, outsider]) await s.context.close();
  });

  test('a draft is saved in place, loaded back by Edit, and withdrawn', async () => {
    const admin = await signedIn('alice');
    await compose(admin.page, { title: 'Draft memo', body: 'Not yet', audience: 'group:default/frontend' });
    await admin.page.uncheck('input[name=forward]');
    await admin.page.getByRole('button', { name: 'Save draft' }).click();
    await admin.page.waitForFunction(() => /Draft saved/.test(document.querySelector('[data-testid=composer-result]')?.textContent ?? ''));
    const row = admin.page.locator('[data-testid=announcement]', { hasText: 'Draft memo' });
    await row.waitFor();
    assert.equal(await row.getAttribute('data-state'), 'draft');
    await admin.page.reload();
    await hydrated(admin.page);
    await row.getByRole('button', { name: 'Edit' }).click();
    assert.equal(await admin.page.inputValue('#a-title'), 'Draft memo');
    assert.equal(await admin.page.inputValue('#a-body'), 'Not yet');
    assert.equal(await admin.page.inputValue('#a-audience'), 'group:default/frontend');
    assert.equal(await admin.page.isChecked('input[name=forward]'), false, 'the draft was saved without forwarding');
    await row.getByRole('button', { name: 'Withdraw' }).click();
    await admin.page.locator('[data-testid=announcement][data-state=withdrawn]', { hasText: 'Draft memo' }).waitFor();
    await admin.context.close();
  });

  test('a scheduled announcement arrives at its time', async () => {
    const admin = await signedIn('alice');
    const member = await watching('dave');
    await compose(admin.page, { title: 'Scheduled hello', audience: 'group:default/frontend' });
    const soon = await admin.page.evaluate(() => {
      const d = new Date(Date.now() + 4000);
      const p = (n) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    });
    await admin.page.fill('#a-publish-at', soon);
    await admin.page.getByRole('button', { name: 'Schedule' }).click();
    await admin.page.waitForFunction(() => /Scheduled/.test(document.querySelector('[data-testid=composer-result]')?.textContent ?? ''));
    assert.equal(await member.page.locator('[data-testid=toast]', { hasText: 'Scheduled hello' }).count(), 0, 'not before its time');
    await member.page.locator('[data-testid=toast]', { hasText: 'Scheduled hello' }).waitFor({ timeout: 15_000 });
    for (const s of [admin, member]) await s.context.close();
  });

  test('a scheduled announcement that can no longer be published shows why, and is published once fixed', async () => {
    const admin = await signedIn('alice');
    await compose(admin.page, { title: 'Doomed rollout', audience: 'group:default/frontend' });
    await admin.page.fill('#a-publish-at', await admin.page.evaluate(() => {
      const d = new Date(Date.now() + 3_600_000);
      const p = (n) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    }));
    await admin.page.getByRole('button', { name: 'Schedule' }).click();
    await admin.page.waitForFunction(() => /Scheduled/.test(document.querySelector('[data-testid=composer-result]')?.textContent ?? ''));
    // What was stored stops passing the checks it met when saved, and its time comes.
    await herald.sql("UPDATE announcements SET publish_at = 0, link = 'javascript:alert(1)' WHERE title = 'Doomed rollout'");
    const row = admin.page.locator('[data-testid=announcement]', { hasText: 'Doomed rollout' });
    for (let i = 0; i < 50 && (await row.getAttribute('data-state')) !== 'failed'; i++) {
      await admin.page.waitForTimeout(200);
      await admin.page.reload();
    }
    assert.equal(await row.getAttribute('data-state'), 'failed');
    assert.match(await row.locator('[data-testid=announcement-failure]').textContent(), /payload\.link must be an http or https URL/);

    await hydrated(admin.page);
    await row.getByRole('button', { name: 'Edit' }).click();
    await admin.page.fill('#a-link', 'https://example.com/rollout');
    await admin.page.getByRole('button', { name: 'Publish now' }).click();
    await admin.page.waitForFunction(() => /Published to 2 people/.test(document.querySelector('[data-testid=composer-result]')?.textContent ?? ''));
    await admin.page.locator('[data-testid=announcement][data-state=published]', { hasText: 'Doomed rollout' }).waitFor();
    assert.equal(await row.locator('[data-testid=announcement-failure]').count(), 0, 'the reason is gone');
    await admin.context.close();
  });

  test('a critical announcement shows a banner on every page until dismissed, without JavaScript too', async () => {
    const admin = await signedIn('alice');
    await compose(admin.page, { title: 'Incident: VPN down', severity: 'critical' });
    await admin.page.getByRole('button', { name: 'Publish now' }).click();
    await admin.page.waitForFunction(() => /Published/.test(document.querySelector('[data-testid=composer-result]')?.textContent ?? ''));
    const reader = await signedIn('bob', false);
    await reader.page.goto(`${herald.base}/settings`);
    const banner = reader.page.locator('[data-testid=critical-banner]', { hasText: 'Incident: VPN down' });
    await banner.waitFor();
    await screenshot(reader.page, 'critical-banner');
    await banner.locator('button', { hasText: 'Dismiss' }).click();
    await reader.page.waitForLoadState();
    assert.equal(await reader.page.locator('[data-testid=critical-banner]', { hasText: 'Incident: VPN down' }).count(), 0);
    for (const s of [admin, reader]) await s.context.close();
  });
});
