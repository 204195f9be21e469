// Shared pieces of the browser tests: start a real Herald on a fresh SQLite file, launch
// Debian's Chromium through playwright-core, and save screenshots as artifacts.

import { execFile, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');
export const artifacts = path.join(root, 'end2end', 'artifacts');

/** Starts `herald serve --demo` on a free port with its own database. */
export async function startHerald({ env = {} } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-e2e-'));
  const first = await spawnHerald(dir, '127.0.0.1:0', env);
  const serviceToken = first.out().match(/(hrld_s_[0-9a-f]+)/)[1];
  const cliEnv = { ...process.env, HERALD_DATABASE_URL: `sqlite:${path.join(dir, 'herald.db')}`, RUST_LOG: 'warn' };
  let current = first;
  return {
    base: first.base,
    serviceToken,
    /** Runs a `herald` CLI command against the same database; resolves with its stdout. */
    cli(args) {
      return new Promise((resolve, reject) => {
        execFile(heraldBin(), args, { cwd: dir, env: cliEnv }, (err, stdout, stderr) =>
          err ? reject(new Error(`herald ${args.join(' ')}: ${stderr}`)) : resolve(stdout));
      });
    },
    output: () => current.out(),
    /** Runs one SQL statement on the server's SQLite file behind its back (Python's sqlite3). */
    sql(statement) {
      const python = path.join(root, 'target', 'pyenv', 'bin', 'python');
      const script = 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=10); c.execute(sys.argv[2]); c.commit()';
      return new Promise((resolve, reject) => {
        execFile(python, ['-c', script, path.join(dir, 'herald.db'), statement], (err, _out, stderr) =>
          err ? reject(new Error(`sql ${statement}: ${stderr}`)) : resolve());
      });
    },
    /** Stops the server (SIGTERM) and starts it again on the same port and database. */
    async restart() {
      await current.kill();
      current = await spawnHerald(dir, first.base.replace('http://', ''), env);
    },
    async stop() {
      await current.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function heraldBin() {
  return process.env.E2E_HERALD_BIN ?? path.join(root, 'target', 'debug', 'herald');
}

async function spawnHerald(dir, listen, env) {
  const child = spawn(heraldBin(), ['serve', '--demo'], {
    cwd: dir,
    env: {
      ...process.env,
      HERALD_LISTEN: listen,
      HERALD_DATABASE_URL: `sqlite:${path.join(dir, 'herald.db')}`,
      HERALD_SITE_ROOT: process.env.HERALD_SITE_ROOT ?? path.join(root, 'target', 'site'),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start:\n${out}`)), 30_000);
    const onData = (chunk) => {
      out += chunk;
      const m = out.match(/Herald is running at (http:\/\/[^\s/]+)\//);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => { out += chunk; });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`herald exited with ${code}:\n${out}`)); });
  });
  const base = await ready;
  return {
    base,
    out: () => out,
    async kill() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Launches headless Chromium with the flags these closed-network machines need. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Collects console errors and uncaught page errors. */
export function watchErrors(page) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

/** Waits until the WebAssembly bundle has hydrated the page. */
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 20_000 });
}

/** Saves a full-page screenshot under end2end/artifacts. */
export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

/** Signs in through the form (works with and without JavaScript). */
export async function signIn(page, base, user, password = 'herald-demo') {
  await page.goto(`${base}/signin`);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/signin') && !u.pathname.startsWith('/api/'), { timeout: 20_000 }),
    page.click('button[type=submit]'),
  ]);
}

/**
 * A new browser context signed in as `user` (password `herald-demo`). With JavaScript the
 * sign-in page is hydrated first, so the form posts in place.
 */
export async function signedInPage(browser, base, user, { javaScriptEnabled = true, ...contextOptions } = {}) {
  const context = await browser.newContext({ javaScriptEnabled, ...contextOptions });
  const page = await context.newPage();
  if (javaScriptEnabled) {
    await page.goto(`${base}/signin`);
    await hydrated(page);
  }
  await signIn(page, base, user);
  return { context, page };
}

const axeSource = readFileSync(path.join(root, 'end2end', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/**
 * Runs axe-core on the page; fails on serious or critical violations. A page loaded without
 * JavaScript cannot run axe, so its markup is scanned in a scripted page of the same origin.
 */
export async function assertAccessible(browser, page, name) {
  await page.addScriptTag({ content: axeSource });
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    const html = await page.content();
    const scripted = await browser.newPage({ colorScheme: 'light' });
    await scripted.route('**/*', (r) => (r.request().resourceType() === 'script' ? r.abort() : r.continue()));
    await scripted.goto(page.url());
    await scripted.setContent(html, { waitUntil: 'load' });
    try {
      return await assertAccessible(browser, scripted, name);
    } finally {
      await scripted.close();
    }
  }
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `accessibility violations on ${name}`);
}

/** Publishes through the REST API with a service token. */
export async function publish(herald, recipients, payload) {
  const res = await fetch(`${herald.base}/api/notifications/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${herald.serviceToken}` },
    body: JSON.stringify({ recipients, payload }),
  });
  if (!res.ok) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Backstage's own frontend client, `NotificationsClient`, unchanged from the published npm
 * package. The package's other dependencies are a whole React front end, so only its
 * tarball is fetched (`npm pack`) and the client file loaded; its one import,
 * `@backstage/errors`, is a devDependency here.
 */
export async function backstageNotificationsClient() {
  const spec = JSON.parse(readFileSync(path.join(root, 'end2end', 'package.json'), 'utf8')).backstageClient;
  const cache = path.join(root, 'end2end', '.cache', `plugin-notifications-${spec.version}`);
  const source = path.join(cache, 'package', spec.file);
  if (!existsSync(source)) {
    mkdirSync(cache, { recursive: true });
    const tarball = execFileSync('npm', ['pack', `${spec.package}@${spec.version}`, '--silent', '--pack-destination', cache], { encoding: 'utf8' }).trim().split('\n').pop();
    execFileSync('tar', ['xzf', path.join(cache, tarball), '-C', cache]);
  }
  // The package has no "type": "module"; the same bytes under .mjs load as the ES module they are.
  const asModule = path.join(root, 'end2end', 'node_modules', '.backstage-notifications-client.mjs');
  copyFileSync(source, asModule);
  return (await import(asModule)).NotificationsClient;
}
