/**
 * What a subscription field does with a watcher that cannot keep up, declared with the field:
 *
 *   delivery: { kind: 'snapshot', shared: true }      every event is the full state: a slow
 *                                                     watcher gets the newest one (conflation)
 *   delivery: { kind: 'events', maxQueued: 500 }      every event matters: up to maxQueued wait
 *                                                     for a slow watcher, then the subscription
 *                                                     ends with RATE_LIMITED (reason
 *                                                     SLOW_CONSUMER) and the client resumes from
 *                                                     its cursor
 *
 * `shared: true` marks a field whose payload is the same for every watcher (no viewer-dependent
 * field or filtering), so one execution serves all of them (src/realtime/shared-subscriptions.ts).
 *
 * A subscription field cannot go without: `delivery` is a required option of Subscription fields
 * and the schema refuses to build without it. The declaration is kept in the field's extensions
 * (`extensions.delivery`), where src/realtime/delivery.ts and the shared subscriptions read it.
 */
import SchemaBuilder, {
  BasePlugin,
  PothosSchemaError,
  type FieldNullability,
  type InputFieldMap,
  type PothosOutputFieldConfig,
  type SchemaTypes,
  type TypeParam,
} from '@pothos/core';

export type DeliveryPolicy =
  | { kind: 'snapshot'; shared?: boolean }
  | {
      kind: 'events';
      /** Events held for a watcher that is behind before its subscription ends (SLOW_CONSUMER). */
      maxQueued: number;
      shared?: boolean;
    };

const pluginName = 'delivery';

// Declaration merging repeats Pothos's type parameters, used or not.
/* eslint-disable @typescript-eslint/no-unused-vars */
declare global {
  export namespace PothosSchemaTypes {
    interface Plugins<Types extends SchemaTypes> {
      delivery: PothosDeliveryPlugin<Types>;
    }
    interface SubscriptionFieldOptions<
      Types extends SchemaTypes,
      Type extends TypeParam<Types>,
      Nullable extends FieldNullability<Type>,
      Args extends InputFieldMap,
      ResolveShape,
      ResolveReturnShape,
    > {
      /** What a watcher that cannot keep up gets (README "Backpressure"). */
      delivery: DeliveryPolicy;
    }
  }
}
/* eslint-enable @typescript-eslint/no-unused-vars */

export class PothosDeliveryPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>): PothosOutputFieldConfig<Types> {
    const delivery = (fieldConfig.pothosOptions as { delivery?: DeliveryPolicy }).delivery;
    const field = `${fieldConfig.parentType}.${fieldConfig.name}`;
    if (fieldConfig.kind !== 'Subscription') {
      if (delivery !== undefined) throw new PothosSchemaError(`${field}: \`delivery\` is for subscription fields`);
      return fieldConfig;
    }
    if (delivery?.kind === 'snapshot') return { ...fieldConfig, extensions: { ...fieldConfig.extensions, delivery } };
    if (delivery?.kind === 'events' && Number.isInteger(delivery.maxQueued) && delivery.maxQueued > 0) {
      return { ...fieldConfig, extensions: { ...fieldConfig.extensions, delivery } };
    }
    throw new PothosSchemaError(
      `${field} declares no delivery policy: every subscription needs \`delivery: { kind: 'snapshot' }\` or \`{ kind: 'events', maxQueued: n }\` (README "Backpressure")`,
    );
  }
}

SchemaBuilder.registerPlugin(pluginName, PothosDeliveryPlugin);

export default pluginName;
