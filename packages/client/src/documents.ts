/**
 * Subscription documents as the kit sends them. For a resumable field (streams.ts) the root
 * selection must hold `seq` (added when the app did not select it, and then removed from what the
 * app receives) and `afterSeq` must be a variable (the kit sets it on every resubscription). From
 * the same root field the kit derives the polling query and the anchor query (the latest seq).
 */
import {
  Kind,
  parse,
  print,
  visit,
  type ArgumentNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
  type ValueNode,
  type VariableDefinitionNode,
  type VariableNode,
  OperationTypeNode,
} from 'graphql';
import { POLL_PAGE_SIZE, STREAM_FIELDS, type StreamField } from './streams.js';

/** The variable the kit adds when the app's document passes no variable as afterSeq. */
export const CURSOR_VARIABLE = 'ovationAfterSeq';

export interface PollPlan {
  /** A query whose data holds the answer under `responseKey`. */
  query: string;
  shape: 'page' | 'history' | 'snapshot' | 'snapshot-list';
}

export interface PreparedSubscription {
  /** The root field's name and its key in results (its alias, if any). */
  field: string;
  responseKey: string;
  query: string;
  operationName: string | undefined;
  stream: StreamField | undefined;
  /** Resumable fields: the variable holding the cursor. */
  cursorVariable: string | undefined;
  /** Resumable fields: the cursor the app's own document or variables start from. */
  initialCursor(variables: Record<string, unknown>): number | null;
  /** The kit added `seq` to the selection: remove it from what the app receives. */
  stripSeq: boolean;
  /** Resumable fields with an anchor: a query answering the topic's latest seq (as data.anchor.latestSeq). */
  anchorQuery: string | undefined;
  poll: PollPlan | undefined;
}

const name = (value: string) => ({ kind: Kind.NAME, value }) as const;
const field = (
  fieldName: string,
  selectionSet?: SelectionSetNode,
  alias?: string,
  args: ArgumentNode[] = [],
): FieldNode => ({
  kind: Kind.FIELD,
  name: name(fieldName),
  ...(alias !== undefined && alias !== fieldName && { alias: name(alias) }),
  arguments: args,
  ...(selectionSet && { selectionSet }),
});
const selectionSet = (selections: readonly SelectionNode[]): SelectionSetNode => ({
  kind: Kind.SELECTION_SET,
  selections,
});
const argument = (argName: string, value: ValueNode): ArgumentNode => ({
  kind: Kind.ARGUMENT,
  name: name(argName),
  value,
});
const variable = (varName: string): VariableNode => ({ kind: Kind.VARIABLE, name: name(varName) });

/** Whether the selection answers `seq` under that key, directly or through fragments. */
function selectsSeq(
  set: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  seen = new Set<string>(),
): boolean {
  return set.selections.some((selection) => {
    if (selection.kind === Kind.FIELD)
      return selection.name.value === 'seq' && (selection.alias?.value ?? 'seq') === 'seq';
    if (selection.kind === Kind.INLINE_FRAGMENT) return selectsSeq(selection.selectionSet, fragments, seen);
    const fragmentName = selection.name.value;
    if (seen.has(fragmentName)) return false;
    seen.add(fragmentName);
    const fragment = fragments.get(fragmentName);
    return fragment !== undefined && selectsSeq(fragment.selectionSet, fragments, seen);
  });
}

/** The fragment definitions `node` needs, transitively, in document order. */
function fragmentsFor(
  node: FieldNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
): FragmentDefinitionNode[] {
  const needed = new Set<string>();
  const walk = (n: FieldNode | FragmentDefinitionNode): void => {
    visit(n, {
      FragmentSpread(spread) {
        const fragmentName = spread.name.value;
        if (needed.has(fragmentName)) return;
        needed.add(fragmentName);
        const fragment = fragments.get(fragmentName);
        if (fragment) walk(fragment);
      },
    });
  };
  walk(node);
  return [...fragments.values()].filter((f) => needed.has(f.name.value));
}

/** A query operation around one root field, with just the variable definitions and fragments it uses. */
function queryAround(
  root: FieldNode,
  operationName: string,
  definitions: readonly VariableDefinitionNode[],
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
): string {
  const used = fragmentsFor(root, fragments);
  const variables = new Set<string>();
  for (const node of [root, ...used]) visit(node, { Variable: (v) => void variables.add(v.name.value) });
  const operation: OperationDefinitionNode = {
    kind: Kind.OPERATION_DEFINITION,
    operation: OperationTypeNode.QUERY,
    name: name(operationName),
    variableDefinitions: definitions.filter((d) => variables.has(d.variable.name.value)),
    directives: [],
    selectionSet: selectionSet([root]),
  };
  return print({ kind: Kind.DOCUMENT, definitions: [operation, ...used] });
}

function rootFieldOf(operation: OperationDefinitionNode): FieldNode {
  const fields = operation.selectionSet.selections.filter(
    (s): s is FieldNode => s.kind === Kind.FIELD && !s.name.value.startsWith('__'),
  );
  if (fields.length !== 1) throw new Error('@ovation/client: a subscription selects exactly one root field');
  return fields[0]!;
}

const asCursor = (value: unknown): number | null =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;

/** Parses and rewrites a subscription document once; cache the result per document. */
export function prepareSubscription(document: DocumentNode | string, operationName?: string): PreparedSubscription {
  const doc = typeof document === 'string' ? parse(document) : document;
  const operations = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation =
    operationName === undefined ? operations[0] : operations.find((o) => o.name?.value === operationName);
  if (!operation || (operationName === undefined && operations.length > 1))
    throw new Error('@ovation/client: a document with one operation, or its operationName');
  if (operation.operation !== 'subscription')
    throw new Error(`@ovation/client: subscribe() takes a subscription, not a ${operation.operation}`);
  const fragments = new Map(
    doc.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((f) => [f.name.value, f] as const),
  );
  const original = rootFieldOf(operation);
  const fieldName = original.name.value;
  const responseKey = original.alias?.value ?? fieldName;
  const stream = STREAM_FIELDS[fieldName];
  const opName = operation.name?.value;
  const base = opName ?? 'Ovation';

  if (stream?.kind !== 'resumable') {
    const poll: PollPlan | undefined =
      stream && original.selectionSet
        ? {
            shape: stream.list ? 'snapshot-list' : 'snapshot',
            query: queryAround(
              field(
                stream.query,
                original.selectionSet,
                responseKey,
                (original.arguments ?? []).map((a) => argument(stream.rename?.[a.name.value] ?? a.name.value, a.value)),
              ),
              `${base}Poll`,
              operation.variableDefinitions ?? [],
              fragments,
            ),
          }
        : undefined;
    return {
      field: fieldName,
      responseKey,
      query: print(doc),
      operationName: opName,
      stream,
      cursorVariable: undefined,
      initialCursor: () => null,
      stripSeq: false,
      anchorQuery: undefined,
      poll,
    };
  }

  // afterSeq as a variable: the app's own, or ours (a literal becomes the initial cursor).
  const given = original.arguments?.find((a) => a.name.value === 'afterSeq');
  const cursorVariable = given?.value.kind === Kind.VARIABLE ? given.value.name.value : CURSOR_VARIABLE;
  const literal = given?.value.kind === Kind.INT ? Number(given.value.value) : null;
  const otherArgs = (original.arguments ?? []).filter((a) => a.name.value !== 'afterSeq');
  const args = [...otherArgs, argument('afterSeq', variable(cursorVariable))];
  const definitions: VariableDefinitionNode[] = [...(operation.variableDefinitions ?? [])];
  if (!definitions.some((d) => d.variable.name.value === cursorVariable)) {
    definitions.push({
      kind: Kind.VARIABLE_DEFINITION,
      variable: variable(cursorVariable),
      type: { kind: Kind.NAMED_TYPE, name: name('Int') },
    });
  }
  const selections = original.selectionSet ?? selectionSet([]);
  const stripSeq = !selectsSeq(selections, fragments);
  const rootSelection = stripSeq ? selectionSet([...selections.selections, field('seq')]) : selections;
  const root: FieldNode = { ...original, arguments: args, selectionSet: rootSelection };

  const rewritten: DocumentNode = {
    ...doc,
    definitions: doc.definitions.map((d) =>
      d === operation
        ? {
            ...operation,
            variableDefinitions: definitions,
            selectionSet: {
              ...operation.selectionSet,
              selections: operation.selectionSet.selections.map((s) => (s === original ? root : s)),
            },
          }
        : d,
    ),
  };

  const history = stream.page === 'history';
  const pageFields = history ? ['latestSeq', 'hasMore', 'missed'] : ['cursor', 'latestSeq', 'hasMore'];
  const pollRoot = field(
    stream.poll,
    selectionSet([...pageFields.map((f) => field(f)), field('events', rootSelection)]),
    responseKey,
    [...args, argument('first', { kind: Kind.INT, value: String(POLL_PAGE_SIZE) })],
  );
  const anchorRoot = field(
    stream.poll,
    selectionSet([field('latestSeq')]),
    'anchor',
    history ? [...otherArgs, argument('first', { kind: Kind.INT, value: '1' })] : otherArgs,
  );
  return {
    field: fieldName,
    responseKey,
    query: print(rewritten),
    operationName: opName,
    stream,
    cursorVariable,
    initialCursor: (variables) => asCursor(variables[cursorVariable]) ?? literal,
    stripSeq,
    anchorQuery: stream.anchor ? queryAround(anchorRoot, `${base}Anchor`, definitions, fragments) : undefined,
    poll: { shape: history ? 'history' : 'page', query: queryAround(pollRoot, `${base}Poll`, definitions, fragments) },
  };
}
