/**
 * What the channels module publishes: on topic `channel:<name>`, one event per published channel
 * event, its seq taken with nextSeq in the transaction that stores it in ChannelEvent (the bounded
 * history). An event stream, never conflated; subscribers replay history after their `afterSeq`,
 * then get live events in seq order (see channels.service.ts, subscribe()).
 *
 * Payloads cross Redis as JSON: plain objects, times as ISO strings.
 */
import type { EventBus } from '../../realtime/event-bus.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

export interface ChannelEventView {
  channel: string;
  seq: number;
  type: string;
  data: unknown;
  createdAt: string;
}

export type ChannelRealtimeEvent = RealtimeEvent<ChannelEventView>;

export const channelTopic = (channel: string): string => topicName('channel', channel);

export function toChannelEvent(view: ChannelEventView): ChannelRealtimeEvent {
  return { topic: channelTopic(view.channel), seq: view.seq, publishedAt: view.createdAt, data: view };
}

/** After the commit. */
export function publishChannelEvent(bus: EventBus, view: ChannelEventView): void {
  const event = toChannelEvent(view);
  event.publishedAt = new Date().toISOString();
  bus.publish('channel', view.channel, event);
}

declare module '../../realtime/topics.js' {
  interface TopicMap {
    /** Named live channels, `channel:<name>`. */
    channel: ChannelEventView;
  }
}
