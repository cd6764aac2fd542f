/**
 * Reference target "raw-ws": the practical ceiling. A bare `ws` server that speaks just enough
 * graphql-transport-ws (connection_init → connection_ack, subscribe → the current standings as a
 * `next`, complete, ping/pong) and, for each publish, serialises ONE `next` frame per distinct
 * subscription id (the load generator uses id "1" everywhere, so one frame) and writes that same
 * Buffer to every socket. No GraphQL execution, no auth, no DB. HTTP POST /graphql answers the
 * handful of operations the load generator sends (matched by field name); POST /graphql with
 * `Accept: text/event-stream` streams the same updates as SSE (`event: next`), so the SSE
 * scenarios have a ceiling too.
 *
 *   node --import tsx bench/reference/raw-ws.ts --port 4102 [--flush-ms 0] [--max-buffered-kb 4096]
 *
 * --flush-ms 0 (default) broadcasts one frame per vote. A socket whose unsent backlog exceeds
 * --max-buffered-kb is skipped for that frame (counted in the exit log) so memory stays bounded
 * when asked for more than the machine can push; the load generator counts those as missing seqs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';
import { Model, ModelError, unverifiedSub, type TallyUpdate } from './model.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4102' },
    host: { type: 'string', default: '127.0.0.1' },
    'flush-ms': { type: 'string', default: '0' },
    'max-buffered-kb': { type: 'string', default: '4096' },
  },
});
const MAX_BUFFERED = Number(values['max-buffered-kb']) * 1024;

/** competitionId → subscription id → sockets. */
const wsSubs = new Map<string, Map<string, Set<WebSocket>>>();
const sseSubs = new Map<string, Set<ServerResponse>>();
let skipped = 0;
let framesSent = 0;

const nextFrame = (id: string, update: TallyUpdate): Buffer =>
  Buffer.from(JSON.stringify({ id, type: 'next', payload: { data: { tallyUpdated: update } } }));
const sseFrame = (update: TallyUpdate): Buffer =>
  Buffer.from(`event: next\ndata: ${JSON.stringify({ data: { tallyUpdated: update } })}\n\n`);

function broadcast(update: TallyUpdate): void {
  const byId = wsSubs.get(update.competitionId);
  if (byId) {
    for (const [id, sockets] of byId) {
      const frame = nextFrame(id, update);
      for (const socket of sockets) {
        if (socket.bufferedAmount > MAX_BUFFERED) {
          skipped += 1;
          continue;
        }
        socket.send(frame);
        framesSent += 1;
      }
    }
  }
  const streams = sseSubs.get(update.competitionId);
  if (streams && streams.size > 0) {
    const frame = sseFrame(update);
    for (const res of streams) {
      if (res.writableLength > MAX_BUFFERED) {
        skipped += 1;
        continue;
      }
      res.write(frame);
      framesSent += 1;
    }
  }
}

const model = new Model(Number(values['flush-ms']), broadcast);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

type Vars = Record<string, unknown> & {
  input?: Record<string, string | null | undefined>;
  id?: string;
  competitionId?: string;
};

function json(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function operation(query: string, variables: Vars, authorization: string | undefined): unknown {
  const input = variables.input ?? {};
  try {
    if (query.includes('castVote')) {
      const voter = unverifiedSub(authorization);
      if (!voter) return { errors: [{ message: 'sign in to vote', extensions: { code: 'UNAUTHENTICATED' } }] };
      const { vote, creditsRemaining } = model.castVote(voter, {
        competitionId: String(input['competitionId']),
        submissionId: input['submissionId'] ?? null,
        idempotencyKey: input['idempotencyKey'] ?? null,
      });
      return {
        data: {
          castVote: {
            vote: { id: vote.id, competitionId: vote.competitionId, createdAt: vote.createdAt },
            creditsRemaining,
          },
        },
      };
    }
    if (query.includes('createCompetition')) {
      const c = model.createCompetition(String(input['title']));
      return { data: { createCompetition: { id: c.id, title: c.title, status: c.status } } };
    }
    if (query.includes('createSubmission')) {
      const s = model.createSubmission(String(input['competitionId']), String(input['title']));
      return { data: { createSubmission: s } };
    }
    if (query.includes('openCompetition')) {
      const c = model.open(String(variables.id));
      return { data: { openCompetition: { id: c.id, status: c.status } } };
    }
  } catch (e) {
    if (e instanceof ModelError) return { errors: [{ message: e.message, extensions: { code: e.code } }] };
    throw e;
  }
  return { errors: [{ message: 'raw-ws reference: unsupported operation' }] };
}

const server = createServer((req, res) => {
  if (req.url === '/ready' || req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  if (req.method !== 'POST' || !req.url?.startsWith('/graphql')) {
    res.writeHead(404);
    res.end();
    return;
  }
  readBody(req).then(
    (text) => {
      const { query, variables } = JSON.parse(text) as { query: string; variables?: Vars };
      const vars = variables ?? {};
      if ((req.headers.accept ?? '').includes('text/event-stream')) {
        const competitionId = String(vars.competitionId);
        const competition = model.competitions.get(competitionId);
        if (!competition || !query.includes('tallyUpdated'))
          return json(res, { errors: [{ message: 'unknown subscription' }] });
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        res.write(sseFrame(model.snapshot(competition)));
        let set = sseSubs.get(competitionId);
        if (!set) sseSubs.set(competitionId, (set = new Set()));
        set.add(res);
        res.on('close', () => set.delete(res));
        return;
      }
      json(res, operation(query, vars, req.headers.authorization));
    },
    (error: unknown) => {
      res.writeHead(400);
      res.end(String(error));
    },
  );
});
server.requestTimeout = 0;

const wss = new WebSocketServer({
  server,
  path: '/graphql',
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has('graphql-transport-ws') ? 'graphql-transport-ws' : false),
});

wss.on('connection', (socket) => {
  const mine: { competitionId: string; id: string }[] = [];
  socket.on('message', (data) => {
    let msg: { type?: string; id?: string; payload?: { query?: string; variables?: Vars } };
    try {
      msg = JSON.parse((data as Buffer).toString()) as typeof msg; // binaryType 'nodebuffer'
    } catch {
      socket.close(4400, 'Invalid message');
      return;
    }
    switch (msg.type) {
      case 'connection_init':
        socket.send('{"type":"connection_ack"}');
        return;
      case 'ping':
        socket.send('{"type":"pong"}');
        return;
      case 'subscribe': {
        const id = String(msg.id);
        const competitionId = String(msg.payload?.variables?.competitionId);
        const competition = model.competitions.get(competitionId);
        if (!competition) {
          socket.send(
            JSON.stringify({ id, type: 'error', payload: [{ message: `Competition ${competitionId} not found` }] }),
          );
          return;
        }
        let byId = wsSubs.get(competitionId);
        if (!byId) wsSubs.set(competitionId, (byId = new Map<string, Set<WebSocket>>()));
        let set = byId.get(id);
        if (!set) byId.set(id, (set = new Set()));
        set.add(socket);
        mine.push({ competitionId, id });
        socket.send(nextFrame(id, model.snapshot(competition)));
        return;
      }
      case 'complete': {
        const id = String(msg.id);
        for (const s of mine) if (s.id === id) wsSubs.get(s.competitionId)?.get(id)?.delete(socket);
        return;
      }
      default:
        return;
    }
  });
  socket.on('close', () => {
    for (const s of mine) wsSubs.get(s.competitionId)?.get(s.id)?.delete(socket);
  });
  socket.on('error', () => undefined);
});

server.listen(Number(values.port), values.host, () => {
  process.stdout.write(
    `raw-ws listening on http://${values.host}:${values.port}/graphql (flush-ms ${values['flush-ms']})\n`,
  );
});

const shutdown = (): void => {
  process.stdout.write(
    `raw-ws: frames sent ${framesSent}, skipped (backlog > ${values['max-buffered-kb']} KiB) ${skipped}\n`,
  );
  for (const client of wss.clients) client.terminate();
  server.closeAllConnections();
  server.close();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
