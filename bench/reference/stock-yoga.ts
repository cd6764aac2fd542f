/**
 * Reference target "stock-yoga": what people would otherwise pick. A minimal, by-the-docs
 * GraphQL Yoga 5 server (SDL schema via createSchema, Yoga's in-memory createPubSub) with
 * graphql-ws on `ws` wired through yoga.getEnveloped as Yoga's docs show, plus Yoga's built-in
 * SSE on /graphql. Same operations and subscription shape as Ovation, state in memory (no DB),
 * castVote authenticated with the same HS256 JWT (jose) as Ovation.
 *
 *   node --import tsx bench/reference/stock-yoga.ts --port 4101 [--flush-ms 0] [--host 127.0.0.1]
 *
 * --flush-ms 0 (default) publishes on every vote (no coalescing). --flush-ms N coalesces to at
 * most one update per N ms per competition, like Ovation's TALLY_FLUSH_MS, for a same-work
 * comparison. JWT_SECRET comes from the environment.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createPubSub, createSchema, createYoga, useReadinessCheck } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { jwtVerify } from 'jose';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { Model, ModelError, type TallyUpdate } from './model.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4101' },
    host: { type: 'string', default: '127.0.0.1' },
    'flush-ms': { type: 'string', default: '0' },
  },
});
const secretText = process.env['JWT_SECRET'];
if (!secretText || secretText.length < 32) {
  process.stderr.write('stock-yoga: JWT_SECRET (>= 32 chars) is required\n');
  process.exit(2);
}
const secret = new TextEncoder().encode(secretText);

const pubSub = createPubSub<{ tally: [competitionId: string, update: TallyUpdate] }>();
const model = new Model(Number(values['flush-ms']), (update) => pubSub.publish('tally', update.competitionId, update));

interface Viewer {
  id: string;
  role: string;
}
interface Ctx {
  viewer: Viewer | null;
}

const typeDefs = /* GraphQL */ `
  enum VotingMethod {
    SIMPLE
  }
  enum CompetitionStatus {
    DRAFT
    OPEN
    CLOSED
  }
  input CreateCompetitionInput {
    title: String!
    votingMethod: VotingMethod!
    creditsPerVoter: Int
  }
  input CreateSubmissionInput {
    competitionId: ID!
    title: String!
    founderId: ID
  }
  input CastVoteInput {
    competitionId: ID!
    submissionId: ID
    votes: Int
    ranking: [ID!]
    approvals: [ID!]
    idempotencyKey: String
  }
  type Competition {
    id: ID!
    title: String!
    status: CompetitionStatus!
    votingMethod: VotingMethod!
    submissions: [Submission!]!
  }
  type Submission {
    id: ID!
    competitionId: ID!
    title: String!
  }
  type Vote {
    id: ID!
    competitionId: ID!
    createdAt: String!
  }
  type CastVotePayload {
    vote: Vote!
    creditsRemaining: Int
  }
  type TallyEntry {
    submissionId: ID!
    votes: Int!
    score: Float!
    rank: Int!
  }
  type TallyUpdate {
    competitionId: ID!
    seq: Int!
    publishedAt: String!
    totalVotes: Int!
    entries: [TallyEntry!]!
  }
  type Query {
    leaderboard(competitionId: ID!): [TallyEntry!]!
  }
  type Mutation {
    createCompetition(input: CreateCompetitionInput!): Competition!
    createSubmission(input: CreateSubmissionInput!): Submission!
    openCompetition(id: ID!): Competition!
    castVote(input: CastVoteInput!): CastVotePayload!
  }
  type Subscription {
    tallyUpdated(competitionId: ID!): TallyUpdate!
  }
`;

const gqlError = (e: unknown): never => {
  if (e instanceof ModelError) throw new GraphQLError(e.message, { extensions: { code: e.code } });
  throw e;
};
function admin(ctx: Ctx): void {
  if (ctx.viewer?.role !== 'ADMIN') throw new GraphQLError('ADMIN only', { extensions: { code: 'FORBIDDEN' } });
}

const schema = createSchema<Ctx>({
  typeDefs,
  resolvers: {
    Query: {
      leaderboard: (_: unknown, { competitionId }: { competitionId: string }) => {
        try {
          return model.snapshot(model.require(competitionId)).entries;
        } catch (e) {
          return gqlError(e);
        }
      },
    },
    Mutation: {
      createCompetition: (_: unknown, { input }: { input: { title: string } }, ctx: Ctx) => {
        admin(ctx);
        return model.createCompetition(input.title);
      },
      createSubmission: (_: unknown, { input }: { input: { competitionId: string; title: string } }, ctx: Ctx) => {
        admin(ctx);
        try {
          return model.createSubmission(input.competitionId, input.title);
        } catch (e) {
          return gqlError(e);
        }
      },
      openCompetition: (_: unknown, { id }: { id: string }, ctx: Ctx) => {
        admin(ctx);
        try {
          return model.open(id);
        } catch (e) {
          return gqlError(e);
        }
      },
      castVote: (
        _: unknown,
        { input }: { input: { competitionId: string; submissionId?: string | null; idempotencyKey?: string | null } },
        ctx: Ctx,
      ) => {
        if (!ctx.viewer) throw new GraphQLError('sign in to vote', { extensions: { code: 'UNAUTHENTICATED' } });
        try {
          return model.castVote(ctx.viewer.id, input);
        } catch (e) {
          return gqlError(e);
        }
      },
    },
    Subscription: {
      tallyUpdated: {
        // The usual pattern: current state first, then the pubsub stream.
        subscribe: async function* (_: unknown, { competitionId }: { competitionId: string }) {
          let competition;
          try {
            competition = model.require(competitionId);
          } catch (e) {
            gqlError(e);
            return;
          }
          const live = pubSub.subscribe('tally', competitionId);
          yield model.snapshot(competition);
          yield* live;
        },
        resolve: (update: TallyUpdate) => update,
      },
    },
  },
});

async function viewerOf(authorization: string | null | undefined): Promise<Viewer | null> {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!token) return null;
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
    return { id: String(payload.sub), role: String((payload['role'] as string | undefined) ?? 'AUDIENCE') };
  } catch {
    throw new GraphQLError('invalid token', { extensions: { code: 'UNAUTHENTICATED' } });
  }
}

const yoga = createYoga({
  schema,
  graphqlEndpoint: '/graphql',
  landingPage: false,
  graphiql: false,
  logging: 'warn',
  // graphql-ws operations come without a Request (the subscribers here are anonymous).
  context: async (initial): Promise<Ctx> => ({
    viewer: (initial.request as Request | undefined)
      ? await viewerOf(initial.request.headers.get('authorization'))
      : null,
  }),
  plugins: [useReadinessCheck({ endpoint: '/ready', check: () => true })],
});

// eslint-disable-next-line @typescript-eslint/no-misused-promises -- Yoga's handler settles its own promise
const server = createServer(yoga);
server.requestTimeout = 0;
const wsServer = new WebSocketServer({ server, path: yoga.graphqlEndpoint });

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

// The recipe from Yoga's "Subscriptions: graphql-ws" docs.
useServer(
  {
    execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
    subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
    onSubscribe: async (ctx, _id, params) => {
      const {
        schema: s,
        execute,
        subscribe,
        contextFactory,
        parse,
        validate,
      } = yoga.getEnveloped({
        ...ctx,
        req: ctx.extra.request,
        socket: ctx.extra.socket,
        params,
      });
      const args = {
        schema: s,
        operationName: params.operationName,
        document: parse(params.query),
        variableValues: params.variables,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe },
      };
      const errors = validate(args.schema, args.document);
      if (errors.length) return errors;
      return args;
    },
  },
  wsServer,
);

server.listen(Number(values.port), values.host, () => {
  process.stdout.write(
    `stock-yoga listening on http://${values.host}:${values.port}/graphql (flush-ms ${values['flush-ms']})\n`,
  );
});

const shutdown = (): void => {
  for (const client of wsServer.clients) client.terminate();
  server.closeAllConnections();
  server.close();
  process.exit(0); // flushes --cpu-prof
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
