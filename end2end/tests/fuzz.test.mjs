// The served OpenAPI description, fuzzed with schemathesis (installed by ./x test into
// target/pyenv): every documented route, with a personal token and with a service token,
// bounded, seeded and on one worker so a run takes seconds and repeats. No 5xx, and every
// answer must conform to the description (status codes, content types, schemas, headers).
// Requests the description allows but Herald's rules refuse (an unknown channel, a negative
// page) are 400 by design, so schemathesis' "positive data acceptance" check is left out.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { root, startHerald } from './helpers.mjs';

let herald;

before(async () => {
  herald = await startHerald({ env: { HERALD_LIMITS__USER_PER_MINUTE: '0', HERALD_LIMITS__PUBLISH_PER_MINUTE: '0' } });
});

after(async () => {
  await herald?.stop();
});

function fuzz(token) {
  const bin = path.join(root, 'target', 'pyenv', 'bin', 'schemathesis');
  const run = spawnSync(bin, [
    'run', `${herald.base}/api/openapi.json`,
    '-H', `Authorization: Bearer ${token}`,
    '--max-examples', '25', '--seed', '20261127', '--workers', '1',
    '--exclude-path', '/api/notifications/stream', '--exclude-deprecated',
    '--exclude-checks', 'positive_data_acceptance',
  ], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(run.error, undefined, `schemathesis could not run (${bin}): ${run.error}`);
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /generated, \d+ passed/);
}

test('fuzzing every route as a user finds no 5xx and nothing off the description', async () => {
  const personal = (await herald.cli(['token', 'create', '--user', 'alice'])).trim();
  fuzz(personal);
});

test('fuzzing every route as a publisher finds no 5xx and nothing off the description', () => {
  fuzz(herald.serviceToken);
});
