// Backstage's own frontend client must work against Herald unchanged, for every method.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { backstageNotificationsClient, publish, startHerald } from './helpers.mjs';

let herald;
let client;
let otherClient;

function clientFor(NotificationsClient, token) {
  return new NotificationsClient({
    discoveryApi: { getBaseUrl: async () => `${herald.base}/api/notifications` },
    fetchApi: {
      fetch: (url, init = {}) => fetch(url, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } }),
    },
  });
}

before(async () => {
  herald = await startHerald();
  const NotificationsClient = await backstageNotificationsClient();
  const token = (await herald.cli(['token', 'create', '--user', 'user:default/erin'])).trim();
  const other = (await herald.cli(['token', 'create', '--user', 'user:default/carol'])).trim();
  client = clientFor(NotificationsClient, token);
  otherClient = clientFor(NotificationsClient, other);
  await publish(herald, { type: 'entity', entityRef: 'user:default/erin' }, { title: 'Low one', severity: 'low', topic: 'alpha' });
  await publish(herald, { type: 'entity', entityRef: 'user:default/erin' }, { title: 'High one', severity: 'high', topic: 'beta', description: 'needle here' });
});

after(async () => {
  await herald?.stop();
});

test('getNotifications pages, filters and sorts', async () => {
  const all = await client.getNotifications({ limit: 10, offset: 0 });
  // Erin has his two plus the demo's broadcast.
  assert.equal(all.totalCount, 3);
  assert.equal(all.notifications.length, 3);
  const high = await client.getNotifications({ minimumSeverity: 'high' });
  assert.deepEqual(high.notifications.map((n) => n.payload.title), ['High one']);
  const searched = await client.getNotifications({ search: 'NEEDLE' });
  assert.deepEqual(searched.notifications.map((n) => n.payload.title), ['High one']);
  const sorted = await client.getNotifications({ sort: 'title', sortOrder: 'asc', limit: 2 });
  assert.deepEqual(sorted.notifications.map((n) => n.payload.title), ['High one', 'Low one']);
  const byTopic = await client.getNotifications({ topic: 'alpha' });
  assert.deepEqual(byTopic.notifications.map((n) => n.payload.title), ['Low one']);
  const recent = await client.getNotifications({ createdAfter: new Date(Date.now() - 3_600_000), read: false, saved: false });
  assert.equal(recent.totalCount, 3);
});

test('getNotification, updateNotifications and getStatus', async () => {
  const { notifications } = await client.getNotifications({ sort: 'created', sortOrder: 'desc' });
  const id = notifications[0].id;
  const one = await client.getNotification(id);
  assert.equal(one.id, id);
  const before = await client.getStatus();
  const updated = await client.updateNotifications({ ids: [id], read: true, saved: true });
  assert.equal(updated.length, 1);
  assert.ok(updated[0].read && updated[0].saved);
  const afterStatus = await client.getStatus();
  assert.equal(afterStatus.unread, before.unread - 1);
  assert.equal(afterStatus.read, before.read + 1);
  assert.equal((await client.getNotifications({ saved: true })).totalCount, 1);
  await client.updateNotifications({ ids: [id], read: false });
  assert.deepEqual(await client.getStatus(), before);
});

test('another user cannot read Erin\'s notification: the client sees a 404', async () => {
  const { notifications } = await client.getNotifications({ topic: 'alpha' });
  await assert.rejects(otherClient.getNotification(notifications[0].id), (e) => {
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.response.status, 404);
    assert.equal(e.body.error.name, 'NotFoundError');
    return true;
  });
});

test('getTopics', async () => {
  assert.deepEqual(await client.getTopics({}), { topics: ['alpha', 'announcements', 'beta'] });
  assert.deepEqual(await client.getTopics({ minimumSeverity: 'high' }), { topics: ['beta'] });
});

test('getNotificationSettings and updateNotificationSettings', async () => {
  const settings = await client.getNotificationSettings();
  const web = settings.channels.find((c) => c.id === 'Web');
  assert.ok(web.origins.some((o) => o.id === 'external:demo' && o.enabled));
  const changed = await client.updateNotificationSettings({
    channels: [{ id: 'Web', origins: [{ id: 'external:demo', enabled: false, topics: [] }] }],
  });
  const origin = changed.channels.find((c) => c.id === 'Web').origins.find((o) => o.id === 'external:demo');
  assert.equal(origin.enabled, false);
  const stored = await publish(herald, { type: 'entity', entityRef: 'user:default/erin' }, { title: 'muted' });
  assert.deepEqual(stored, [], 'a disabled Web channel stores nothing for Erin');
});
