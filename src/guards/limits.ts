/**
 * Protocol limits for every transport that goes through Yoga's pipeline (HTTP, both SSE modes,
 * graphql-ws via getEnveloped):
 * - documents: at most MAX_QUERY_TOKENS tokens (graphql-js's parser option) and no bracket
 *   nesting deeper than the parser can take safely (checked before parsing: graphql-js recurses,
 *   and a few thousand `{` overflow the stack);
 * - operations: selection depth ≤ MAX_QUERY_DEPTH and estimated cost ≤ MAX_QUERY_COMPLEXITY, as a
 *   validation rule (cached with the document), re-checked at execution when a `first`/`last`
 *   bound comes from a variable;
 * - request bodies: ≤ MAX_REQUEST_BODY_BYTES on every path (`useRequestBodyLimit`, before any
 *   handler reads the body, with or without a Content-Length; the only check: Yoga's own
 *   maxRequestBodySize is off, see http.ts) → 413.
 * Errors are BAD_USER_INPUT with `extensions.reason`.
 *
 * Cost: the objects a result may hold (GitHub's "nodes"): a field with a selection costs
 * multiplier × (1 + its selection's cost); scalar fields cost nothing of their own, introspection
 * subtrees are not measured here (the token limit bounds them). The multiplier is the value of a
 * `first`/`last`/`limit`/`take` argument when the field has one, else 10 for a list field (1 for
 * the list fields right under a paginated object field: a connection's edges/nodes), else 1.
 *
 * One file on purpose: every limit applied before an operation runs (document, request, batch),
 * each small, read together when tuning them (README "Limits").
 */
import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type ASTVisitor,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type Source,
  type ValidationContext,
  type ValidationRule,
  visit,
  BREAK,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { AppError, ErrorCode } from '../errors.js';
import { toGraphQLError } from '../schema/errors.js';

export const DEFAULT_LIST_SIZE = 10;
const PAGING_ARGS = new Set(['first', 'last', 'limit', 'take']);

export interface QueryLimits {
  maxDepth: number;
  maxComplexity: number;
}

export interface Measure {
  depth: number;
  cost: number;
  /** Whether a multiplier came from a variable (the cost then depends on the variables). */
  variableBound: boolean;
}

function badInput(
  message: string,
  reason: string,
  extra: Record<string, unknown>,
  nodes?: readonly FieldNode[] | OperationDefinitionNode,
): GraphQLError {
  return toGraphQLError(new AppError(ErrorCode.BAD_USER_INPUT, message, { reason, ...extra }), nodes);
}

/** Selection depth and estimated cost of one operation. Fragments are measured once each (no fragment bombs). */
export function measureOperation(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables?: Record<string, unknown> | null,
): Measure {
  let variableBound = false;
  const defaults = new Map<string, unknown>();
  for (const definition of operation.variableDefinitions ?? []) {
    const value = definition.defaultValue;
    if (value?.kind === Kind.INT) defaults.set(definition.variable.name.value, Number(value.value));
  }
  const memo = new Map<string, { depth: number; cost: number }>();
  const visiting = new Set<string>();

  const multiplier = (
    field: FieldNode,
    def: GraphQLField<unknown, unknown> | undefined,
    underPaging: boolean,
  ): { value: number; paging: boolean } => {
    for (const arg of field.arguments ?? []) {
      if (!PAGING_ARGS.has(arg.name.value)) continue;
      let raw: unknown;
      if (arg.value.kind === Kind.INT) raw = Number(arg.value.value);
      else if (arg.value.kind === Kind.VARIABLE) {
        variableBound = true;
        const name = arg.value.name.value;
        raw = variables && name in variables ? variables[name] : defaults.get(name);
      }
      const value = typeof raw === 'number' && Number.isFinite(raw) ? Math.max(0, Math.floor(raw)) : DEFAULT_LIST_SIZE;
      return { value, paging: true };
    }
    const isList = def !== undefined && isListType(getNullableType(def.type));
    return { value: isList && !underPaging ? DEFAULT_LIST_SIZE : 1, paging: false };
  };

  const walk = (
    selectionSet: SelectionSetNode,
    parent: GraphQLNamedType | undefined,
    underPaging: boolean,
  ): { depth: number; cost: number } => {
    let depth = 0;
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (name.startsWith('__')) continue; // __typename is free; introspection is bounded by the token limit
        const def = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name] : undefined;
        if (!selection.selectionSet) {
          depth = Math.max(depth, 1); // a scalar read off its parent: no cost of its own
          continue;
        }
        const m = multiplier(selection, def, underPaging);
        // A paginated object (a connection): the page size already counts its edges/nodes list.
        const connection = m.paging && def !== undefined && !isListType(getNullableType(def.type));
        const child = walk(selection.selectionSet, def ? getNamedType(def.type) : undefined, connection);
        cost += m.value * (1 + child.cost);
        depth = Math.max(depth, 1 + child.depth);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        const child = walk(selection.selectionSet, type ?? undefined, underPaging);
        cost += child.cost;
        depth = Math.max(depth, child.depth);
      } else {
        const name = selection.name.value;
        let child = memo.get(name);
        if (!child) {
          const fragment = fragments.get(name);
          if (!fragment || visiting.has(name)) continue; // unknown or cyclic: other rules report it
          visiting.add(name);
          child = walk(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value) ?? undefined, false);
          visiting.delete(name);
          memo.set(name, child);
        }
        cost += child.cost;
        depth = Math.max(depth, child.depth);
      }
    }
    return { depth, cost };
  };

  const root = schema.getRootType(operation.operation) ?? undefined;
  const { depth, cost } = walk(operation.selectionSet, root, false);
  return { depth, cost, variableBound };
}

export function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  return fragments;
}

/** The errors for one measured operation (empty when within the limits). */
export function limitErrors(measure: Measure, limits: QueryLimits, node?: OperationDefinitionNode): GraphQLError[] {
  const errors: GraphQLError[] = [];
  if (measure.depth > limits.maxDepth) {
    errors.push(
      badInput(
        `Query is too deep: depth ${measure.depth} exceeds the maximum of ${limits.maxDepth}`,
        'QUERY_TOO_DEEP',
        { depth: measure.depth, maxDepth: limits.maxDepth },
        node,
      ),
    );
  }
  if (measure.cost > limits.maxComplexity) {
    const cost = Number.isFinite(measure.cost) ? measure.cost : Number.MAX_SAFE_INTEGER;
    errors.push(
      badInput(
        `Query is too complex: cost ${cost} exceeds the maximum of ${limits.maxComplexity}`,
        'QUERY_TOO_COMPLEX',
        { cost, maxComplexity: limits.maxComplexity },
        node,
      ),
    );
  }
  return errors;
}

/** Whether any `first`/`last`/`limit`/`take` argument in the document takes a variable. */
export function hasVariablePaging(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Argument(node) {
      if (PAGING_ARGS.has(node.name.value) && node.value.kind === Kind.VARIABLE) {
        found = true;
        return BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/** The validation rule: depth and cost of every operation in the document (variables at their defaults). */
export function createQueryLimitsRule(limits: QueryLimits): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    let fragments: Map<string, FragmentDefinitionNode> | undefined;
    return {
      OperationDefinition(node) {
        fragments ??= fragmentsOf(context.getDocument());
        for (const error of limitErrors(measureOperation(context.getSchema(), node, fragments), limits, node))
          context.reportError(error);
        return false; // nothing below needs visiting by this rule
      },
    };
  };
}

/**
 * Deepest nesting of `{ ( [` in a GraphQL source, skipping strings, block strings and comments.
 * Stops counting once past `limit` (returns limit + 1).
 */
export function bracketNesting(source: string, limit: number): number {
  let depth = 0;
  let max = 0;
  const n = source.length;
  for (let i = 0; i < n; i += 1) {
    const c = source.charCodeAt(i);
    if (c === 123 /* { */ || c === 40 /* ( */ || c === 91 /* [ */) {
      depth += 1;
      if (depth > max && (max = depth) > limit) return max;
    } else if (c === 125 || c === 41 || c === 93) {
      if (depth > 0) depth -= 1;
    } else if (c === 35 /* # */) {
      while (i < n && source.charCodeAt(i) !== 10 && source.charCodeAt(i) !== 13) i += 1;
    } else if (c === 34 /* " */) {
      if (source.startsWith('"""', i)) {
        const end = source.indexOf('"""', i + 3);
        // \""" inside a block string does not close it
        let close = end;
        while (close !== -1 && source.charCodeAt(close - 1) === 92) close = source.indexOf('"""', close + 3);
        i = close === -1 ? n : close + 2;
      } else {
        i += 1;
        while (i < n) {
          const d = source.charCodeAt(i);
          if (d === 92) i += 2;
          else if (d === 34 || d === 10 || d === 13) break;
          else i += 1;
        }
      }
    }
  }
  return max;
}

/** How deep brackets may nest in a document: enough for any operation within MAX_QUERY_DEPTH, far from the stack's end. */
export const maxBracketNesting = (maxDepth: number): number => Math.max(128, maxDepth * 3 + 32);

/**
 * Depth, complexity and token limits as one Yoga/envelop plugin: the parse wrapper, the
 * validation rule, and the execution-time re-check for variable-bound page sizes.
 */
export function useQueryLimits(opts: QueryLimits & { maxTokens: number }): Plugin {
  const rule = createQueryLimitsRule(opts);
  const nestingLimit = maxBracketNesting(opts.maxDepth);
  const variableBound = new WeakMap<DocumentNode, boolean>();

  const recheck = (
    schema: GraphQLSchema,
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: unknown,
  ): GraphQLError[] => {
    let bound = variableBound.get(document);
    if (bound === undefined) variableBound.set(document, (bound = hasVariablePaging(document)));
    if (!bound) return [];
    const operations = document.definitions.filter(
      (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
    );
    const operation = operationName
      ? operations.find((o) => o.name?.value === operationName)
      : operations.length === 1
        ? operations[0]
        : undefined;
    if (!operation) return [];
    return limitErrors(
      measureOperation(schema, operation, fragmentsOf(document), (variables ?? {}) as Record<string, unknown>),
      opts,
      operation,
    );
  };

  return {
    onParse({ setParseFn, parseFn }) {
      setParseFn((source, options) => {
        const text = typeof source === 'string' ? source : (source as Source).body;
        const nesting = bracketNesting(text, nestingLimit);
        if (nesting > nestingLimit) {
          throw badInput(`Document nests brackets more than ${nestingLimit} deep`, 'QUERY_TOO_DEEP', {
            maxNesting: nestingLimit,
          });
        }
        return parseFn(source, { ...options, maxTokens: opts.maxTokens }) as DocumentNode;
      });
    },
    onValidate({ addValidationRule }) {
      addValidationRule(rule);
    },
    onExecute({ args, setResultAndStopExecution }) {
      const { schema, document, operationName, variableValues } = args as ExecutionArgs;
      const errors = recheck(schema, document, operationName, variableValues);
      if (errors.length > 0) setResultAndStopExecution({ errors });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const { schema, document, operationName, variableValues } = args as ExecutionArgs;
      const errors = recheck(schema, document, operationName, variableValues);
      if (errors.length > 0) setResultAndStopExecution({ data: null, errors });
    },
  };
}

function tooLarge(fetchAPI: { Response: typeof Response }, maxBytes: number): Response {
  const body = JSON.stringify({
    errors: [
      {
        message: `Request body too large: at most ${maxBytes} bytes`,
        // The reason Yoga's own limit on /graphql gives (REQUEST_ENTITY_TOO_LARGE), for one client-side check.
        extensions: { code: 'BAD_USER_INPUT', retryable: false, reason: 'REQUEST_ENTITY_TOO_LARGE', maxBytes },
      },
    ],
  });
  return new fetchAPI.Response(body, {
    status: 413,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

async function discard(reader: ReadableStreamDefaultReader<Uint8Array>, budget: number): Promise<void> {
  try {
    for (let left = budget; left > 0;) {
      const { done, value } = await reader.read();
      if (done) return;
      left -= value.byteLength;
    }
    await reader.cancel();
  } catch {
    // the client went away
  }
}

/**
 * 413 for request bodies over `maxBytes`, on every path (Yoga's own maxRequestBodySize only wraps
 * the GraphQL endpoint's parsers, and on a chunked body it errors the stream mid-read, which leaves
 * the connection unusable for the client's next request): a declared Content-Length is checked
 * before anything is read (Node discards the unread body); a chunked body is read with a byte
 * count, and past the limit a bounded rest is drained before the 413 so the connection stays sound.
 */
export function useRequestBodyLimit(opts: { maxBytes: number }): Plugin {
  return {
    async onRequest({ request, endResponse, setRequest, fetchAPI }) {
      if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS') return;
      const declared = request.headers.get('content-length');
      if (declared !== null) {
        // Node's parser delivers exactly Content-Length bytes, so the header is the whole check.
        // The unread rest is discarded by Node (as for Yoga's own 413): the client reads the answer.
        if (/^\d+$/.test(declared) && Number(declared) > opts.maxBytes) endResponse(tooLarge(fetchAPI, opts.maxBytes));
        return;
      }
      if (!request.body) return;
      const reader = request.body.getReader();
      const chunks: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > opts.maxBytes) {
          // Read (and drop) a bounded rest before answering, so the connection ends the request
          // cleanly; past the budget, cut it.
          await discard(reader, opts.maxBytes * 8);
          endResponse(tooLarge(fetchAPI, opts.maxBytes));
          return;
        }
        chunks.push(value);
      }
      setRequest(
        new fetchAPI.Request(request.url, {
          method: request.method,
          headers: request.headers,
          body: Buffer.concat(chunks),
          signal: request.signal,
        }),
      );
    },
  };
}

/**
 * Yoga's GET and form parsers `JSON.parse` the `variables` and `extensions` parameters without
 * catching: `GET /graphql?query=…&variables=oops` surfaces as an unexpected SyntaxError
 * (INTERNAL_SERVER_ERROR, logged as a server fault). It is the client's bad input: 400
 * BAD_USER_INPUT (reason BAD_REQUEST), like invalid JSON in a POST body.
 */
export function useRequestParamErrors(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      const parse = requestParser;
      setRequestParser(async (request) => {
        try {
          return await parse(request);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
          // `http` is Yoga's status hint (400); the pipeline never shows it to clients.
          throw toGraphQLError(
            new AppError(ErrorCode.BAD_USER_INPUT, `Request parameters are not valid JSON: ${error.message}`, {
              reason: 'BAD_REQUEST',
              http: { status: 400 },
            }),
          );
        }
      });
    },
  };
}
