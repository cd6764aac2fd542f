export {
  createOvationClient,
  type OvationClient,
  type OvationClientOptions,
  type TypedDocumentNode,
} from './client.js';
export { prepareSubscription, CURSOR_VARIABLE, type PreparedSubscription, type PollPlan } from './documents.js';
export { STREAM_FIELDS, type StreamField, type ResumableField, type SnapshotField } from './streams.js';
export { ConnectionFailure, type FailureKind } from './session.js';
export type { FetchFn, OvationSink, Result, ResyncEvent, StatusEvent, TransportName } from './types.js';
