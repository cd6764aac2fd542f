/** Imports every domain module's schema file; the builder collects their types. */
import { builder } from './builder.js';
import './scalars.js';
import '../modules/users/users.schema.js';
import '../modules/competitions/competitions.schema.js';
import '../modules/voting/voting.schema.js';
import '../modules/reactions/reactions.schema.js';
import '../modules/sessions/sessions.schema.js';
import '../modules/offers/offers.schema.js';
import '../modules/pool/pool.schema.js';
import '../modules/dashboard/dashboard.schema.js';
import '../modules/auth/auth.schema.js';
import '../modules/fraud/fraud.schema.js';
import '../modules/messaging/messaging.schema.js';
import '../modules/notifications/notifications.schema.js';
import '../modules/channels/channels.schema.js';
import '../modules/presence/presence.schema.js';
import '../modules/ops/ops.schema.js';

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

export const schema = builder.toSchema({ sortSchema: true });
