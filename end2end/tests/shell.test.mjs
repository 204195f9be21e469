// The application shell: server-rendered, usable without JavaScript, hydrated and
// interactive with it, and free of console errors.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hydrated, launchBrowser, publish, screenshot, signIn, signedInPage, startHerald, watchErrors } from './helpers.mjs';

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

describe('without JavaScript', () => {
  test('the shell renders with header and navigation, and visitors are sent to sign in', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const res = await page.goto(`${herald.base}/?view=unread`);
    assert.equal(res.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/signin');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/?view=unread');
    assert.equal(await page.title(), 'Sign in · Herald');
    assert.equal(await page.locator('.brand-name').textContent(), 'Herald');
    for (const label of ['Inbox', 'Settings']) {
      assert.equal(await page.locator(`nav >> text=${label}`).count(), 1, label);
    }
    assert.equal(await page.locator('[data-testid=signin-form]').count(), 1);
    await screenshot(page, 'shell-no-js');
    await context.close();
  });

  test('signing in with the plain form works and shows the inbox', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await signIn(page, herald.base, 'carol');
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await page.locator('[data-testid=signed-in-user]').textContent(), 'Carol Coder');
    assert.ok(await page.locator('[data-testid=notification-list] li').count() >= 2);
    await screenshot(page, 'inbox-no-js');
    await context.close();
  });
});

describe('with JavaScript', () => {
  test('the page hydrates without console errors', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${herald.base}/`);
    await hydrated(page);
    await page.goto(`${herald.base}/signin`);
    await hydrated(page);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('the inbox loads one WebAssembly module, and settings its own chunk when first shown', async () => {
    const { context, page } = await signedInPage(browser, herald.base, 'carol');
    const errors = watchErrors(page);
    const modules = [];
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (path.endsWith('.wasm')) modules.push(path);
    });
    await page.goto(`${herald.base}/`);
    await hydrated(page);
    assert.deepEqual(modules, ['/pkg/herald.wasm']);

    // Navigating in the page: the router loads the settings chunk, then shows the page.
    await page.click('nav >> text=Settings');
    await page.waitForSelector('[data-testid=settings-matrix]');
    assert.equal(new URL(page.url()).pathname, '/settings');
    const chunks = modules.slice(1);
    assert.ok(chunks.length >= 1, `settings loaded no chunk of its own: ${modules}`);
    assert.ok(!chunks.includes('/pkg/herald.wasm'), `the main module loaded twice: ${modules}`);
    assert.deepEqual(errors, []);

    // A trailing slash: the server redirects to the page's one address, which loads its
    // chunk before it hydrates (carol is no admin: /admin answers 403, which the console
    // reports, so only uncaught errors are counted here).
    const uncaught = [];
    page.on('pageerror', (e) => uncaught.push(String(e)));
    for (const path of ['/settings/', '/admin/']) {
      await page.goto(`${herald.base}${path}`);
      assert.equal(new URL(page.url()).pathname, path.slice(0, -1));
      await hydrated(page);
    }
    assert.deepEqual(uncaught, []);
    await context.close();
  });

  test('links change the page in place, back and forward too, and the navigation marks the current page', async () => {
    // A short window, so that the settings page scrolls.
    const { context, page } = await signedInPage(browser, herald.base, 'carol', { viewport: { width: 1000, height: 400 } });
    const errors = watchErrors(page);
    await page.goto(`${herald.base}/`);
    await hydrated(page);
    // Gone if any step below loads a new document.
    await page.evaluate(() => { window.sameDocument = true; });
    const current = () => page.locator('nav.sidenav a[aria-current=page]').allTextContents();
    assert.deepEqual(await current(), ['Inbox']);

    await page.click('nav >> text=Settings');
    await page.waitForSelector('[data-testid=settings-matrix]');
    assert.equal(new URL(page.url()).pathname, '/settings');
    assert.deepEqual(await current(), ['Settings']);
    assert.match(await page.title(), /(^|\) )Settings · Herald$/);

    await page.goBack();
    await page.waitForSelector('[data-testid=settings-matrix]', { state: 'detached' });
    assert.equal(new URL(page.url()).pathname, '/');
    assert.deepEqual(await current(), ['Inbox']);
    assert.match(await page.title(), /(^|\) )Inbox · Herald$/);
    await page.goForward();
    await page.waitForSelector('[data-testid=settings-matrix]');
    assert.equal(new URL(page.url()).pathname, '/settings');

    // A new page is shown from its top, as a new document would be (the settings page is
    // scrolled to its end first; the link is clicked where it is, without scrolling to it),
    // and a link's fragment scrolls to its element once the page is shown.
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    assert.ok(await page.evaluate(() => window.scrollY > 0), 'the settings page is taller than the window');
    await page.evaluate(() => document.querySelector('a.brand').click());
    await page.waitForSelector('[data-testid=settings-matrix]', { state: 'detached' });
    await page.waitForFunction(() => window.scrollY === 0);
    await page.evaluate(() => {
      const a = Object.assign(document.createElement('a'), { href: '/settings#tokens-title', textContent: 'to the tokens' });
      document.querySelector('main').prepend(a);
      a.click();
    });
    await page.waitForSelector('[data-testid=settings-matrix]');
    await page.waitForFunction(() => window.scrollY > 0);
    assert.equal(new URL(page.url()).hash, '#tokens-title');

    // The unread badge links to the inbox's unread view: the query comes along.
    await page.click('[data-testid=unread-badge]');
    await page.waitForSelector('[data-testid=settings-matrix]', { state: 'detached' });
    assert.equal(new URL(page.url()).search, '?view=unread');
    assert.deepEqual(await current(), ['Inbox']);
    assert.equal(await page.evaluate(() => window.sameDocument), true);
    assert.deepEqual(errors, []);

    // A link to a path that is none of the pages (here the API's description) is the
    // browser's to load, not shown as "not found" in place.
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/api/openapi.json'),
      page.evaluate(() => {
        const a = Object.assign(document.createElement('a'), { href: '/api/openapi.json', textContent: 'API' });
        document.querySelector('main').prepend(a);
        a.click();
      }),
    ]);
    assert.equal(await page.evaluate(() => window.sameDocument), undefined);
    assert.match(await page.textContent('body'), /"openapi"/);
    await context.close();
  });

  test('a visitor following a link to a page signs in and lands on it, all in place', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${herald.base}/signin`);
    await hydrated(page);
    await page.evaluate(() => { window.sameDocument = true; });
    await page.click('nav >> text=Settings');
    await page.waitForURL((u) => u.pathname === '/signin' && u.searchParams.get('next') === '/settings');
    await page.fill('#username', 'carol');
    await page.fill('#password', 'herald-demo');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=settings-matrix]');
    assert.equal(new URL(page.url()).pathname, '/settings');
    assert.equal(await page.evaluate(() => window.sameDocument), true);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('every page serializes the same data on every load, and none of it failed', async () => {
    // The browser hydrates a page with the data the server serialized for it, numbered in the
    // order its resources were created. Were a resource created inside a suspense, the server
    // could create it two or three times, depending on timing: the numbering would change
    // from load to load, an early copy could fail, and the browser would hydrate with other
    // data than the markup shows (seen as an admin page whose buttons stayed dead).
    const { context, page } = await signedInPage(browser, herald.base, 'alice', { javaScriptEnabled: false });
    const [{ id }] = await publish(herald, { type: 'entity', entityRef: 'user:default/alice' }, { title: 'Serialized once' });
    for (const path of ['/', '/?view=unread&minimumSeverity=high', `/notifications/${id}`, '/settings', '/admin']) {
      const seen = new Set();
      for (let i = 0; i < 15; i++) {
        const html = await (await page.request.get(`${herald.base}${path}`)).text();
        const resources = [...html.matchAll(/__RESOLVED_RESOURCES\[(\d+)\] = "\{\\"(Ok|Err)/g)].map((m) => `${m[1]}:${m[2]}`);
        assert.ok(resources.length > 0, `${path}: no serialized data`);
        assert.deepEqual(resources.filter((r) => r.endsWith(':Err')), [], `${path}: a resource failed`);
        seen.add(resources.join(' '));
      }
      assert.equal(seen.size, 1, `${path}: the serialized data changed between loads: ${[...seen].join(' | ')}`);
    }
    await context.close();
  });

  test('after hydration the menu button toggles the navigation on a phone', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${herald.base}/`);
    await hydrated(page);
    const button = page.locator('[data-testid=menu-button]');
    assert.equal(await button.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.locator('#nav-links').isVisible(), false);
    await button.click();
    assert.equal(await button.getAttribute('aria-expanded'), 'true');
    assert.equal(await page.locator('#nav-links').isVisible(), true);
    await screenshot(page, 'shell-phone-menu');
    await context.close();
  });

  test('signing in shows the user, the unread badge and the inbox', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${herald.base}/`);
    await hydrated(page);
    await signIn(page, herald.base, 'alice');
    await page.waitForSelector('[data-testid=signed-in-user]');
    assert.equal(await page.locator('[data-testid=signed-in-user]').textContent(), 'Alice Admin');
    assert.match(await page.locator('[data-testid=unread-badge]').textContent(), /^\d+$/);
    assert.equal(await page.locator('nav >> text=Admin').count(), 1, 'alice is an admin');
    await screenshot(page, 'inbox');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a wrong password says so and sets no session', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${herald.base}/signin`);
    await hydrated(page);
    await page.fill('#username', 'alice');
    await page.fill('#password', 'wrong-password');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=signin-error]:has-text("Wrong user name or password")');
    const cookies = await context.cookies();
    assert.equal(cookies.filter((c) => c.name === 'herald_session').length, 0);
    await context.close();
  });
});

for (const javaScriptEnabled of [false, true]) {
  test(`signing out ends the session ${javaScriptEnabled ? 'with' : 'without'} JavaScript`, async () => {
    const { context, page } = await signedInPage(browser, herald.base, 'carol', { javaScriptEnabled });
    if (javaScriptEnabled) await hydrated(page);
    await Promise.all([page.waitForURL((url) => url.pathname === '/signin'), page.click('text=Sign out')]);
    await page.locator('[data-testid=signin-form]').waitFor();
    assert.equal(await page.locator('[data-testid=signed-in-user]').count(), 0);
    // The session is over on the server too: the inbox sends the browser to sign in.
    await page.goto(`${herald.base}/`);
    assert.equal(new URL(page.url()).pathname, '/signin');
    const status = await context.request.get(`${herald.base}/api/notifications/status`);
    assert.equal(status.status(), 401);
    await context.close();
  });
}
