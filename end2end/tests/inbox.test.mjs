// The inbox hub: views, filters in the URL, row actions and the detail page — each with and
// without JavaScript.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, watchErrors, publish, screenshot, signedInPage, startHerald } from './helpers.mjs';

let herald;
let browser;

before(async () => {
  herald = await startHerald();
  browser = await launchBrowser();
  const to = (user) => ({ type: 'entity', entityRef: `user:default/${user}` });
  for (const user of ['carol', 'dave']) {
    await publish(herald, to(user), { title: 'Pager: disk almost full', severity: 'critical', topic: 'incidents', description: 'Volume **/var** at 97%. <script>alert(1)</script> [runbook](javascript:alert(1))' });
    await publish(herald, to(user), { title: 'Weekly digest', severity: 'low', topic: 'digest' });
  }
});

after(async () => {
  await browser?.close();
  await herald?.stop();
});

/** A signed-in page of `user`, hydrated when JavaScript is on. */
function signedIn(javaScriptEnabled, user) {
  return signedInPage(browser, herald.base, user, { javaScriptEnabled });
}

const titles = (page) => page.locator('[data-testid=notification] .title').allTextContents();

for (const javaScriptEnabled of [false, true]) {
  const user = javaScriptEnabled ? 'dave' : 'carol';
  describe(javaScriptEnabled ? 'with JavaScript' : 'without JavaScript', () => {
    test('filters live in the URL and sanitized markdown renders', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      await page.selectOption('#severity', 'critical');
      // With JavaScript the form navigates in place: the document stays, with what it holds.
      if (javaScriptEnabled) await page.evaluate(() => { window.documentBeforeFiltering = true; });
      await Promise.all([page.waitForURL(/severity=critical/), page.click('text=Apply')]);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=notification]').length === 1);
      if (javaScriptEnabled) assert.equal(await page.evaluate(() => window.documentBeforeFiltering), true, 'the filters applied without loading another document');
      assert.deepEqual(await titles(page), ['Pager: disk almost full']);
      const description = page.locator('[data-testid=notification] .description');
      assert.equal(await description.locator('strong').textContent(), '/var');
      assert.equal(await description.locator('script').count(), 0);
      assert.equal(await page.locator('a[href^="javascript"]').count(), 0);
      // The URL is shareable: loading it again gives the same view.
      await page.goto(page.url());
      assert.deepEqual(await titles(page), ['Pager: disk almost full']);
      await screenshot(page, `inbox-filtered${javaScriptEnabled ? '' : '-no-js'}`);
      await context.close();
    });

    test('rows can be read, saved and done, and the views follow', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      const row = () => page.locator('[data-testid=notification]', { hasText: 'Weekly digest' });
      await row().locator('text=Save').click();
      await row().locator('text=Unsave').waitFor();
      await row().locator('text=Mark as read').click();
      await row().locator('text=Mark as unread').waitFor();
      await page.goto(`${herald.base}/?view=saved`);
      assert.deepEqual(await titles(page), ['Weekly digest']);
      await page.goto(`${herald.base}/?view=unread`);
      assert.ok(!(await titles(page)).includes('Weekly digest'));
      await page.goto(`${herald.base}/`);
      await row().locator('text=Done').click();
      await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=notification] .title')].some((e) => e.textContent === 'Weekly digest'));
      await page.goto(`${herald.base}/?view=done`);
      assert.deepEqual(await titles(page), ['Weekly digest']);

      // Mark all read empties the unread view.
      await page.goto(`${herald.base}/?view=unread`);
      await page.click('text=Mark all read');
      await page.locator('[data-testid=empty-state]').waitFor();
      assert.match(await page.locator('[data-testid=empty-state]').textContent(), /caught up/);
      await context.close();
    });

    test('the detail page shows one notification in full', async () => {
      const { context, page } = await signedIn(javaScriptEnabled, user);
      await page.goto(`${herald.base}/`);
      const href = await page.locator('[data-testid=notification]', { hasText: 'Pager' }).locator('time').locator('xpath=..').getAttribute('href');
      await page.goto(`${herald.base}${href}`);
      assert.match(await page.locator('[data-testid=detail] h1').textContent(), /Pager: disk almost full/);
      assert.match(await page.locator('[data-testid=detail]').textContent(), /critical severity/);
      const missing = await page.goto(`${herald.base}/notifications/does-not-exist`);
      assert.equal(missing.status(), 404);
      if (javaScriptEnabled) {
        // The page is a lazy route: followed from the hydrated inbox, the router loads its
        // code and shows it in place, and its buttons work in place.
        const errors = watchErrors(page);
        await page.goto(`${herald.base}/`);
        await hydrated(page);
        await page.locator('[data-testid=notification]', { hasText: 'Pager' }).locator('time').locator('xpath=..').click();
        await page.waitForURL(/\/notifications\//);
        const detail = page.locator('[data-testid=detail]');
        await detail.waitFor();
        const [from, to] = (await detail.locator('button', { hasText: /^Save$/ }).count()) ? ['Save', 'Unsave'] : ['Unsave', 'Save'];
        await detail.locator('button', { hasText: new RegExp(`^${from}$`) }).click();
        await detail.locator('button', { hasText: new RegExp(`^${to}$`) }).waitFor();
        await detail.locator('button', { hasText: new RegExp(`^${to}$`) }).click();
        await detail.locator('button', { hasText: new RegExp(`^${from}$`) }).waitFor();
        assert.deepEqual(errors, []);
      }
      await context.close();
    });
  });
}
