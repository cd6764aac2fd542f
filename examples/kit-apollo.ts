// examples/kit-apollo.ts: the same with Apollo Client. Subscriptions go through @ovation/client,
// queries and mutations on to the HttpLink. If events were lost for good (RESYNC_REQUIRED), the
// active queries are refetched and the subscription goes on.   npx tsx examples/kit-apollo.ts <channel>
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { createOvationClient } from '@ovation/client';
import { OvationLink } from '@ovation/client/apollo';
import WebSocket from 'ws';
import { ChannelEventDocument } from '../test/generated/graphql.js';

const url = process.env.OVATION_URL ?? 'http://localhost:4000/graphql';
const ovation = createOvationClient({
  url,
  webSocketImpl: WebSocket,
  onResync: () => void client.refetchQueries({ include: 'active' }),
});
const client = new ApolloClient({
  link: ApolloLink.from([new OvationLink(ovation), new HttpLink({ uri: url })]),
  cache: new InMemoryCache(),
});

client
  .subscribe({ query: ChannelEventDocument, variables: { channel: process.argv[2]! } })
  .subscribe(({ data, error }) => {
    console.log(error ? error.message : `${data!.channelEvent.seq} ${data!.channelEvent.type}`);
  });
