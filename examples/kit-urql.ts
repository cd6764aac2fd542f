// examples/kit-urql.ts: a channel's events through urql. @ovation/client carries the subscription:
// graphql-ws, else SSE, else polling; after a drop it reconnects and resumes after the last event.
//   npx tsx examples/kit-urql.ts <channel>
import { createOvationClient } from '@ovation/client';
import { ovationExchange } from '@ovation/client/urql';
import { Client, fetchExchange } from '@urql/core';
import WebSocket from 'ws';
import { ChannelEventDocument } from '../test/generated/graphql.js'; // typed by GraphQL Code Generator

const url = process.env.OVATION_URL ?? 'http://localhost:4000/graphql';
const ovation = createOvationClient({ url, webSocketImpl: WebSocket }); // browsers, React Native: no webSocketImpl
const client = new Client({ url, exchanges: [fetchExchange, ovationExchange(ovation)] });

client.subscription(ChannelEventDocument, { channel: process.argv[2]! }).subscribe(({ data, error }) => {
  console.log(error ? error.message : `${data!.channelEvent.seq} ${data!.channelEvent.type}`);
});
