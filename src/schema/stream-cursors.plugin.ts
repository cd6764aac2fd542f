/**
 * Every Subscription field's source stream records each event's seq in the operation's context
 * (src/realtime/cursors.ts: SSE writes it as the event's `id:`), and a field that takes `afterSeq`
 * resumes from the transport's `Last-Event-ID` when one came in (it is newer than any afterSeq the
 * reconnecting request repeats from its first subscribe). One place for every field, so no
 * resolver has to remember either.
 */
import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import type { GraphQLFieldResolver } from 'graphql';
import { isAsyncIterable } from 'graphql-yoga';
import { trackCursor, type CursorContext } from '../realtime/cursors.js';

export class StreamCursorsPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapSubscribe(
    subscribe: GraphQLFieldResolver<unknown, Types['Context'], object> | undefined,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> | undefined {
    if (!subscribe || fieldConfig.kind !== 'Subscription') return subscribe;
    const resumable = 'afterSeq' in fieldConfig.args;
    return async (parent, args, context, info) => {
      const cursors = context as CursorContext;
      const effective =
        resumable && cursors.lastEventSeq !== undefined ? { ...args, afterSeq: cursors.lastEventSeq } : args;
      const source: unknown = await subscribe(parent, effective, context, info);
      return isAsyncIterable(source) ? trackCursor(source, cursors) : source;
    };
  }
}

const pluginName = 'streamCursors';

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      streamCursors: StreamCursorsPlugin<Types>;
    }
  }
}

SchemaBuilder.registerPlugin(pluginName, StreamCursorsPlugin);

export default pluginName;
