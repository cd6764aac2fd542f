/**
 * Rate limits for test servers: the product defaults (10 votes a minute per user, 60 subscriptions
 * a minute per IP for anonymous callers…) would trip tests that drive one user or one loopback IP
 * hard. Tests of the limits themselves pass their own values, which override these.
 */
const HIGH = '1000000';
export const TEST_RATE_LIMITS: Record<string, string> = {
  RATE_LIMIT_VOTES_PER_MINUTE: HIGH,
  RATE_LIMIT_REACTIONS_PER_MINUTE: HIGH,
  RATE_LIMIT_MESSAGES_PER_MINUTE: HIGH,
  RATE_LIMIT_TYPING_PER_MINUTE: HIGH,
  RATE_LIMIT_PRESENCE_PER_MINUTE: HIGH,
  RATE_LIMIT_PLEDGES_PER_MINUTE: HIGH,
  RATE_LIMIT_POLLS_PER_MINUTE: HIGH,
  RATE_LIMIT_QUERIES_PER_MINUTE: HIGH,
  RATE_LIMIT_MUTATIONS_PER_MINUTE: HIGH,
  RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: HIGH,
  RATE_LIMIT_SUBSCRIPTIONS_BURST: HIGH,
  MAX_SUBSCRIPTIONS_PER_USER: HIGH,
};
