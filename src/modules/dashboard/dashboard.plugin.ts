/**
 * Counts live `tallyUpdated` subscribers per competition for the dashboard's "active viewers".
 * It sits before the shared-subscriptions plugin so it sees every subscriber, shared or not.
 */
import { getOperationAST, Kind, type ExecutionArgs, type ValueNode } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { ViewerCounter } from './dashboard.store.js';

function argumentValue(node: ValueNode, variables: Record<string, unknown> | undefined): unknown {
  if (node.kind === Kind.VARIABLE) return variables?.[node.name.value];
  if (node.kind === Kind.STRING || node.kind === Kind.INT) return node.value;
  return undefined;
}

export function useTallyViewerCount(counter: ViewerCounter): Plugin {
  return {
    onSubscribe({ args }) {
      const { document, operationName } = args as ExecutionArgs;
      const operation = getOperationAST(document, operationName);
      if (operation?.operation !== 'subscription') return;
      const field = operation.selectionSet.selections.find(
        (s) => s.kind === Kind.FIELD && s.name.value === 'tallyUpdated',
      );
      if (field?.kind !== Kind.FIELD) return;
      const arg = field.arguments?.find((a) => a.name.value === 'competitionId');
      const competitionId = arg && argumentValue(arg.value, args.variableValues as Record<string, unknown> | undefined);
      if (typeof competitionId !== 'string') return;
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) return; // refused (NOT_FOUND): nobody is watching
          counter.add(competitionId);
          return { onEnd: () => counter.remove(competitionId) };
        },
      };
    },
  };
}
