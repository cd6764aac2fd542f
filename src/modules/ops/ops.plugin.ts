/**
 * Every GraphQL operation, on every transport (one Yoga pipeline): a request id, one access log
 * line (type, root field, duration, code; slow ones flagged at warn), and its metrics
 * (ovation_graphql_operations_total, the latency histogram, live subscriptions per field, results
 * delivered and their lag, resume requests). Register it last: its subscription wrapper must be
 * the outermost, so a result counts as delivered when the transport takes it (after
 * delivery.ts held it for a slow client), not when it was produced.
 *
 * Shared subscriptions written through a direct sink bypass the iterator: shared-subscriptions.ts
 * reports those writes itself (`onDelivered`), so each write is counted once.
 */
import {
  getOperationAST,
  Kind,
  type execute,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type subscribe,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { withRequestContext, type Logger } from '../../infra/logger.js';
import { publishedAtOf, type CursorContext } from '../../realtime/cursors.js';
import { resumes } from '../../realtime/shared-subscriptions.js';
import { errorCodeOf } from '../../schema/errors.js';
import { newId } from '../../infra/strings.js';
import type { OperationType, OpsHooks, TransportLabel } from './ops.metrics.registry.js';

const OPERATION = Symbol('ovation.operation');

interface OperationState {
  requestId: string;
  startedAt: number;
}

interface WithOperation {
  [OPERATION]?: OperationState;
  request?: Request;
  transport?: string;
}

/** Which streaming transport carries a subscription (graphql-ws marks its contexts; SSE has a request). */
function transportOf(context: WithOperation): TransportLabel {
  if (context.transport === 'graphql-ws') return 'ws';
  return context.request?.url.includes('/graphql/stream') ? 'graphql-sse' : 'sse';
}

/** A client's X-Request-ID when it is a sane token, else a new one: it is written into every line. */
const REQUEST_ID = /^[\w.:-]{1,64}$/;

function operationState(context: WithOperation): OperationState {
  let state = context[OPERATION];
  if (!state) {
    const given = context.request?.headers?.get('x-request-id');
    state = { requestId: given && REQUEST_ID.test(given) ? given : newId(), startedAt: performance.now() };
    // A symbol key: copied when the context is spread into the operation's (http.ts), never serialised.
    context[OPERATION] = state;
  }
  return state;
}

/** The operation's first root field: the bounded name metrics use (never the client's operation name). */
export function rootFieldOf(operation: OperationDefinitionNode | null | undefined): string {
  const field = operation?.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
  return field?.kind === Kind.FIELD ? field.name.value : '(fragment)';
}

function codeOf(result: ExecutionResult): string {
  const first = result.errors?.[0];
  return first === undefined ? 'OK' : errorCodeOf(first);
}

export function useOperationObservability(opts: {
  hooks: OpsHooks;
  logger: Logger;
  schema: GraphQLSchema;
  /** SLOW_OPERATION_MS: operations at least this long are logged at warn with `slow: true`. */
  slowOperationMs: number;
}): Plugin {
  const { hooks, logger } = opts;
  const resumable = new Set(
    Object.values(opts.schema.getSubscriptionType()?.getFields() ?? {})
      .filter((field) => field.args.some((arg) => arg.name === 'afterSeq'))
      .map((field) => field.name),
  );

  const finish = (
    state: OperationState,
    type: OperationType,
    name: string,
    operationName: string | null | undefined,
    code: string,
  ): void => {
    const durationMs = performance.now() - state.startedAt;
    hooks.operation(type, name, code, durationMs / 1000);
    const fields = {
      requestId: state.requestId,
      type,
      field: name,
      operationName: operationName ?? undefined,
      durationMs: Math.round(durationMs * 10) / 10,
      code,
    };
    if (durationMs >= opts.slowOperationMs) logger.warn('slow operation', { ...fields, slow: true });
    else logger.info('operation', fields);
  };

  return {
    // The first hook an operation passes on every transport: its clock and id start here.
    onParse({ context }) {
      operationState(context);
    },
    onExecute({ args, executeFn, setExecuteFn }) {
      const state = operationState(args.contextValue);
      const { document, operationName } = args as ExecutionArgs;
      const operation = getOperationAST(document, operationName);
      const type = (operation?.operation ?? 'query') as OperationType;
      const name = rootFieldOf(operation);
      setExecuteFn((executeArgs) =>
        withRequestContext({ requestId: state.requestId }, () => executeFn(executeArgs) as ReturnType<typeof execute>),
      );
      return {
        onExecuteDone({ result }) {
          // Incremental delivery (@defer/@stream) would be an iterator: counted as OK once started.
          finish(state, type, name, operation?.name?.value, isAsyncIterable(result) ? 'OK' : codeOf(result));
        },
      };
    },
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const context = args.contextValue as WithOperation & CursorContext;
      const state = operationState(context);
      const { document, operationName } = args as ExecutionArgs;
      const operation = getOperationAST(document, operationName);
      const field = rootFieldOf(operation);
      const root = operation?.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
      const resuming =
        resumable.has(field) &&
        (context.lastEventSeq !== undefined ||
          (root?.kind === Kind.FIELD &&
            resumes(root.arguments ?? [], (args.variableValues ?? {}) as Record<string, unknown>)));
      setSubscribeFn((subscribeArgs) =>
        withRequestContext(
          { requestId: state.requestId },
          () => subscribeFn(subscribeArgs) as ReturnType<typeof subscribe>,
        ),
      );
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) {
            const code = codeOf(result);
            finish(state, 'subscription', field, operation?.name?.value, code);
            if (resuming) hooks.resume(field, code);
            return;
          }
          finish(state, 'subscription', field, operation?.name?.value, 'OK');
          if (resuming) hooks.resume(field, 'resumed');
          setResult(
            observed(
              (result as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator](),
              field,
              transportOf(context),
              hooks,
            ),
          );
        },
      };
    },
  };
}

/**
 * The subscription as the transport pulls it: each result it takes counts as delivered, and the
 * live-subscription gauge drops once, however it ends (completed, returned, failed). A class, not
 * an object literal of closures: one lives as long as each subscription.
 */
function observed(
  source: AsyncIterator<ExecutionResult>,
  field: string,
  transport: TransportLabel,
  hooks: OpsHooks,
): AsyncIterableIterator<ExecutionResult> {
  hooks.subscriptionStarted(field, transport);
  return new ObservedIterator(source, field, transport, hooks);
}

class ObservedIterator implements AsyncIterableIterator<ExecutionResult> {
  // Results of events published before the subscription started (a snapshot read at the start,
  // history replayed to a resuming client) count as delivered, but their age is not delivery lag.
  private readonly startedAt = Date.now();
  private live = true;

  constructor(
    private readonly source: AsyncIterator<ExecutionResult>,
    private readonly field: string,
    private readonly transport: TransportLabel,
    private readonly hooks: OpsHooks,
  ) {}

  private lagOf(result: ExecutionResult): number | undefined {
    const publishedAt = publishedAtOf(result);
    return publishedAt !== undefined && publishedAt >= this.startedAt ? publishedAt : undefined;
  }

  private end(): void {
    if (!this.live) return;
    this.live = false;
    this.hooks.subscriptionEnded(this.field, this.transport);
  }

  async next(): Promise<IteratorResult<ExecutionResult>> {
    try {
      const step = await this.source.next();
      if (step.done) this.end();
      else if (!step.value.errors) this.hooks.delivered(this.field, this.lagOf(step.value), 1);
      return step;
    } catch (error) {
      this.end();
      throw error;
    }
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    this.end();
    return (await this.source.return?.()) ?? { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.end();
    if (this.source.throw) return this.source.throw(error);
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
