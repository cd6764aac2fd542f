// examples/eventsource.ts: no library at all, a plain EventSource (GET /graphql). It reconnects by
// itself and sends the id of the last event it got (Last-Event-ID), after which the server resumes.
// Only RESYNC_REQUIRED (those events are gone) needs the app: refetch, then follow anew from now.
//   npx tsx examples/eventsource.ts <channel>        (a browser has EventSource built in)
import { EventSource } from 'eventsource';

const url = new URL(process.env.OVATION_URL ?? 'http://localhost:4000/graphql');
url.searchParams.set('query', 'subscription($channel: String!) { channelEvent(channel: $channel) { seq type } }');
url.searchParams.set('variables', JSON.stringify({ channel: process.argv[2] }));

function follow(): void {
  const source = new EventSource(url);
  source.addEventListener('next', (event) => {
    const { data, errors } = JSON.parse(event.data);
    if (errors?.[0]?.extensions?.code === 'RESYNC_REQUIRED') return void (source.close(), follow()); // refetch first
    console.log(errors ? errors[0].message : `${data.channelEvent.seq} ${data.channelEvent.type}`);
  });
}
follow();
