/**
 * The guard pipeline as part of a field's definition. Every mutation declares its guards next to
 * its `authScopes`:
 *
 *   guard: { rate: 'votes', fraud: { kind: 'vote', subject: ({ input }) => ({ … }) } }
 *
 * and this plugin wraps its resolver so that, for every call, the declared rate rule and then the
 * fraud check run before the resolver; scope-auth wraps outside it (it is listed before this
 * plugin in builder.ts, and Pothos makes the first plugin the outermost wrapper), so the order is
 * auth → rate → fraud → resolver on every mutation, and no resolver has to remember a call.
 *
 * Every root field is guarded, by this one mechanism:
 * - Mutation: `guard` is a required option (a type error otherwise), and the schema refuses to
 *   build when one has none (a field made around the types).
 * - Query: `guard` is optional; without one, the field counts against the `queries` rule
 *   (RATE_LIMIT_QUERIES_PER_MINUTE). Queries that clients repeat in a loop (the polling fallbacks)
 *   declare `polls`.
 * - Subscription: no `guard` option: every subscription field counts against the `subscriptions`
 *   rule when it starts (a resolver wrapper would run per event, not per subscribe), enforced on
 *   every transport by src/guards/subscription-limits.ts; the plugin records the rule.
 *
 * The schema keeps each root field's guard in its extensions (`extensions.guard`, a
 * GuardExtension), so the built schema says which guards a field has (test/unit/guards.test.ts).
 */
import SchemaBuilder, {
  BasePlugin,
  PothosSchemaError,
  type FieldNullability,
  type InputFieldMap,
  type InputShapeFromFields,
  type PothosOutputFieldConfig,
  type SchemaTypes,
  type TypeParam,
} from '@pothos/core';
import type { GraphQLFieldResolver } from 'graphql';
import type { FraudSubject, GuardSpec, RateRule } from '../guards/guards.js';
import { QUERIES_RULE, SUBSCRIPTIONS_RULE } from '../guards/rate-limit.js';

export type FraudKind = FraudSubject['kind'];

/** Which fraud check a field runs (a static kind, visible in the schema) and its subject, from the field's arguments. */
export type FraudDeclaration<Args> = {
  [K in FraudKind]: { kind: K; subject: (args: Args) => Omit<Extract<FraudSubject, { kind: K }>, 'kind'> };
}[FraudKind];

export interface FieldGuard<Args> {
  /** The rate rule one call counts against (src/guards/rate-limit.ts; README "Limits"). */
  rate: RateRule;
  /** The fraud check, for the operations fraud detection scores (votes, reactions). */
  fraud?: FraudDeclaration<Args>;
}

/** What a guarded field's `extensions.guard` holds. */
export interface GuardExtension {
  rate: RateRule;
  fraud: FraudKind | null;
}

export interface GuardPluginOptions<Types extends SchemaTypes> {
  /** Runs the stages a call's declaration asks for (rate, then fraud); throws to refuse the call. */
  run: (context: Types['Context'], spec: GuardSpec) => Promise<void>;
}

const pluginName = 'guards';

// Declaration merging repeats Pothos's type parameters, used or not.
/* eslint-disable @typescript-eslint/no-unused-vars */
declare global {
  export namespace PothosSchemaTypes {
    interface Plugins<Types extends SchemaTypes> {
      guards: PothosGuardPlugin<Types>;
    }
    interface SchemaBuilderOptions<Types extends SchemaTypes> {
      guards: GuardPluginOptions<Types>;
    }
    interface MutationFieldOptions<
      Types extends SchemaTypes,
      Type extends TypeParam<Types>,
      Nullable extends FieldNullability<Type>,
      Args extends InputFieldMap,
      ResolveReturnShape,
    > {
      /** Rate rule (and fraud check) every call passes after scope-auth and before the resolver. */
      guard: FieldGuard<InputShapeFromFields<Args>>;
    }
    interface QueryFieldOptions<
      Types extends SchemaTypes,
      Type extends TypeParam<Types>,
      Nullable extends FieldNullability<Type>,
      Args extends InputFieldMap,
      ResolveReturnShape,
    > {
      /** Without one, the field counts against the `queries` rule; polling queries declare `polls`. */
      guard?: FieldGuard<InputShapeFromFields<Args>>;
    }
  }
}
/* eslint-enable @typescript-eslint/no-unused-vars */

function declaredGuard<Types extends SchemaTypes>(
  fieldConfig: PothosOutputFieldConfig<Types>,
): FieldGuard<Record<string, unknown>> | undefined {
  return (fieldConfig.pothosOptions as { guard?: FieldGuard<Record<string, unknown>> }).guard;
}

/** The guard a Query or Mutation field's resolver runs: its own, or for a query the `queries` rule. */
function effectiveGuard<Types extends SchemaTypes>(
  fieldConfig: PothosOutputFieldConfig<Types>,
): FieldGuard<Record<string, unknown>> | undefined {
  const declared = declaredGuard(fieldConfig);
  if (declared === undefined && fieldConfig.kind === 'Query') return { rate: QUERIES_RULE };
  return fieldConfig.kind === 'Query' || fieldConfig.kind === 'Mutation' ? declared : undefined;
}

export class PothosGuardPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>): PothosOutputFieldConfig<Types> {
    const field = `${fieldConfig.parentType}.${fieldConfig.name}`;
    if (fieldConfig.kind === 'Subscription') {
      if (declaredGuard(fieldConfig) !== undefined)
        throw new PothosSchemaError(
          `${field}: \`guard\` is for mutation and query fields (subscriptions are limited in src/guards/subscription-limits.ts)`,
        );
      const extension: GuardExtension = { rate: SUBSCRIPTIONS_RULE, fraud: null };
      return { ...fieldConfig, extensions: { ...fieldConfig.extensions, guard: extension } };
    }
    if (fieldConfig.kind !== 'Mutation' && fieldConfig.kind !== 'Query') {
      if (declaredGuard(fieldConfig) !== undefined)
        throw new PothosSchemaError(`${field}: \`guard\` is for root fields`);
      return fieldConfig;
    }
    const guard = effectiveGuard(fieldConfig);
    if (typeof guard?.rate !== 'string' || guard.rate === '') {
      throw new PothosSchemaError(
        `${field} declares no rate rule: every mutation needs \`guard: { rate: '<rule>' }\` (README "Limits")`,
      );
    }
    const extension: GuardExtension = { rate: guard.rate, fraud: guard.fraud?.kind ?? null };
    return { ...fieldConfig, extensions: { ...fieldConfig.extensions, guard: extension } };
  }

  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    const guard = effectiveGuard(fieldConfig);
    if (guard === undefined) return resolver;
    const { rate, fraud } = guard;
    const run = this.builder.options.guards.run;
    return async (parent, args, context, info) => {
      const spec: GuardSpec =
        fraud === undefined
          ? { rate }
          : { rate, fraud: { ...fraud.subject(args as Record<string, unknown>), kind: fraud.kind } as FraudSubject };
      await run(context, spec);
      return resolver(parent, args, context, info);
    };
  }
}

SchemaBuilder.registerPlugin(pluginName, PothosGuardPlugin);

export default pluginName;
