/**
 * Live channels: named streams of typed JSON events with a per-channel seq, a bounded history
 * (the newest `historyLimit` events per channel, pruned in the insert's transaction) and a
 * subscription that replays history after a seq, then goes live, with no gap and no duplicate.
 *
 * Publishing is one transaction: nextSeq of `channel:<name>` (row lock: publishers of a channel
 * commit in seq order, so a poller reading "seq > n" never sees n+2 before n+1) → insert → prune.
 * Published on the bus after the commit.
 */
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js';
import type { Viewer } from '../../guards/auth.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { currentSeq, nextSeq } from '../../realtime/sequence.js';
import { latestSeq } from '../../realtime/event-log.js';
import { resumableStream } from '../../realtime/resume.js';
import {
  channelTopic,
  publishChannelEvent,
  toChannelEvent,
  type ChannelEventView,
  type ChannelRealtimeEvent,
} from './channels.events.js';
import {
  HISTORY_DEFAULT_LIMIT,
  assertApiCanPublish,
  assertCanRead,
  missedEvents,
  pageSize,
  validateAfterSeq,
  validateChannel,
  validateData,
  validateType,
} from './channels.rules.js';

type Tx = Prisma.TransactionClient;

export interface ChannelHistory {
  channel: string;
  /** Events with seq > afterSeq, oldest first, at most `first`. */
  events: ChannelEventView[];
  /** The channel's latest seq (0: nothing published yet). */
  latestSeq: number;
  /** The oldest seq still in history, null when empty. */
  oldestSeq: number | null;
  /** Events after afterSeq were pruned before this read: reload state, then continue from latestSeq. */
  missed: boolean;
  /** More events follow the returned ones: ask again with afterSeq = the last returned seq. */
  hasMore: boolean;
}

export interface PublishOptions {
  /**
   * Runs first in the publishing transaction; the event is stored and published only if it
   * resolves true (e.g. "this milestone was not announced yet", atomically with the event).
   */
  onlyIf?: (tx: Tx) => Promise<boolean>;
}

interface Row {
  channel: string;
  seq: number;
  type: string;
  data: unknown;
  createdAt: Date;
}

const view = (row: Row): ChannelEventView => ({
  channel: row.channel,
  seq: Number(row.seq),
  type: row.type,
  data: row.data,
  createdAt: row.createdAt.toISOString(),
});

export function createChannelsService(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  /** Events kept per channel (older ones are pruned when a new one is stored). */
  historyLimit?: number;
  /** How long a subscriber waits on the bus for a missing seq before reading it from the history. */
  gapWaitMs?: number;
  now?: () => Date;
}) {
  const { prisma, bus } = deps;
  const historyLimit = deps.historyLimit ?? HISTORY_DEFAULT_LIMIT;
  const gapWaitMs = deps.gapWaitMs ?? 150;
  const clock = deps.now ?? (() => new Date());
  const replayPage = 200;

  /** Server-side publishing: any valid channel. Resolves with the stored event, or null when onlyIf said no. */
  async function publish(
    channel: string,
    type: string,
    data: unknown,
    opts: PublishOptions = {},
  ): Promise<ChannelEventView | null> {
    validateChannel(channel);
    validateType(type);
    const payload = validateData(data);
    const stored = await prisma.$transaction(async (tx) => {
      if (opts.onlyIf && !(await opts.onlyIf(tx))) return null;
      const seq = await nextSeq(tx, channelTopic(channel));
      const row = await tx.channelEvent.create({
        data: { channel, seq, type, data: payload as Prisma.InputJsonValue, createdAt: clock() },
      });
      if (seq > historyLimit) {
        await tx.channelEvent.deleteMany({ where: { channel, seq: { lte: seq - historyLimit } } });
      }
      return view(row);
    });
    if (stored) publishChannelEvent(bus, stored);
    return stored;
  }

  async function readAfter(
    db: Tx | PrismaClient,
    channel: string,
    afterSeq: number,
    upTo: number | null,
    limit: number,
  ): Promise<ChannelEventView[]> {
    const rows = await db.$queryRaw<Row[]>`
      SELECT "channel", "seq", "type", "data", "createdAt" FROM "ChannelEvent"
      WHERE "channel" = ${channel} AND "seq" > ${afterSeq}::int ${upTo === null ? Prisma.empty : Prisma.sql`AND "seq" <= ${upTo}::int`}
      ORDER BY "seq" ASC
      LIMIT ${limit}::int`;
    return rows.map(view);
  }

  return {
    publish,

    /** publishToChannel (ADMIN, checked by the schema): server-only channels are refused. */
    async publishAsAdmin(channel: string, type: string, data: unknown): Promise<ChannelEventView> {
      validateChannel(channel);
      assertApiCanPublish(channel);
      return (await publish(channel, type, data))!;
    },

    /** channelEvents: what a poller or a reconnecting client needs to catch up. */
    async history(
      viewer: Viewer | null,
      channel: string,
      args: { afterSeq?: number | null; first?: number | null },
    ): Promise<ChannelHistory> {
      validateChannel(channel);
      assertCanRead(viewer, channel);
      const afterSeq = validateAfterSeq(args.afterSeq) ?? 0;
      const limit = pageSize(args.first);
      return prisma.$transaction(async (tx) => {
        // FOR SHARE waits for a publisher holding the next seq: every seq up to latestSeq is committed.
        const latestSeq = await currentSeq(tx, channelTopic(channel));
        const rows = await readAfter(tx, channel, afterSeq, latestSeq, limit + 1);
        const [oldest] = await tx.$queryRaw<{ seq: number | null }[]>`
          SELECT MIN("seq") AS "seq" FROM "ChannelEvent" WHERE "channel" = ${channel}`;
        const oldestSeq = oldest?.seq == null ? null : Number(oldest.seq);
        return {
          channel,
          events: rows.slice(0, limit),
          latestSeq,
          oldestSeq,
          missed: missedEvents(afterSeq, oldestSeq, latestSeq),
          hasMore: rows.length > limit,
        };
      });
    },

    /**
     * channelEvent: with afterSeq, the retained events after it first (oldest first; RESYNC_REQUIRED
     * when they were pruned or afterSeq is ahead), then live ones; without, live ones from now.
     * Seqs strictly increase, with no gap. Resolves once live on the broker.
     */
    async subscribe(
      viewer: Viewer | null,
      channel: string,
      afterSeqArg?: number | null,
    ): Promise<AsyncIterableIterator<ChannelRealtimeEvent>> {
      validateChannel(channel);
      assertCanRead(viewer, channel);
      const afterSeq = validateAfterSeq(afterSeqArg);
      const topic = channelTopic(channel);
      return resumableStream<ChannelEventView>({
        subscribe: () => bus.subscribe('channel', channel),
        afterSeq,
        gapWaitMs,
        pageSize: replayPage,
        history: {
          read: async (after, upTo, limit) =>
            (await readAfter(prisma, channel, after, upTo, limit)).map(toChannelEvent),
          latest: () => latestSeq(prisma, topic),
        },
      });
    },
  };
}

export type ChannelsService = ReturnType<typeof createChannelsService>;
