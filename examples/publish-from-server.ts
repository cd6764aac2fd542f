// examples/publish-from-server.ts: publishing to a channel from server-side code, which holds the
// app's `services` (a module, a job; here a script sharing the deployment's DATABASE_URL, and
// REDIS_URL so that every instance's subscribers get the events).   npx tsx examples/publish-from-server.ts
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import type { Prisma } from '../src/generated/prisma/client.js';

const app = await createApp(loadConfig());
const { services } = app;

// After your own commit; any valid channel, activity:* included:
const event = await services.channels.publish('app:scoreboard', 'score.updated', { home: 2, away: 1 });
console.log('published', event);

// Conditionally and atomically with the event (e.g. "only once"): the callback runs first in the
// publishing transaction and the event is stored and published only if it resolves true.
async function notYetAnnounced(tx: Prisma.TransactionClient): Promise<boolean> {
  // Serialises announcers (across instances too) until commit, so the second one sees the first's event.
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('app:scoreboard:final'))`;
  return (await tx.channelEvent.count({ where: { channel: 'app:scoreboard', type: 'final' } })) === 0;
}
const announce = () => services.channels.publish('app:scoreboard', 'final', {}, { onlyIf: notYetAnnounced });
const [first, second] = await Promise.all([announce(), announce()]);
console.log('final published once:', first?.seq ?? null, second?.seq ?? null);

await app.stop();
