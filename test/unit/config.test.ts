import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('reads REDIS_CLUSTER_NODES: seeds as host:port or URLs carrying TLS and the credentials', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002' }).redisCluster).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: undefined,
      password: undefined,
      tls: false,
    });
    expect(
      loadConfig({ REDIS_CLUSTER_NODES: 'rediss://app:p%40ss@a.example:6379,rediss://app:p%40ss@b.example:6379' })
        .redisCluster,
    ).toEqual({
      nodes: [
        { host: 'a.example', port: 6379 },
        { host: 'b.example', port: 6379 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
    expect(loadConfig({}).redisCluster).toBeUndefined();
    // A cluster is Redis shared by every worker, as REDIS_URL is.
    expect(
      loadConfig({ WORKERS: '2', DATABASE_URL: 'postgres://127.0.0.1/db', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })
        .workers,
    ).toBe(2);
  });

  it.each([
    ['an empty entry', '127.0.0.1:7000,,127.0.0.1:7001'],
    ['no port', '127.0.0.1'],
    ['another scheme', 'http://127.0.0.1:7000'],
    ['a database number', 'redis://127.0.0.1:7000/2'],
    ['seeds that disagree on credentials', 'redis://a:x@h1:7000,redis://a:y@h2:7000'],
    ['seeds that disagree on TLS', 'redis://h1:7000,rediss://h2:7000'],
  ])('rejects REDIS_CLUSTER_NODES with %s', (_, value) => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: value })).toThrow(ConfigError);
  });

  it('rejects REDIS_URL and REDIS_CLUSTER_NODES together', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toThrow(
      /REDIS_CLUSTER_NODES and REDIS_URL are both set/,
    );
  });

  it('applies the contract defaults with an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      dataDir: path.resolve('./.data'),
      databaseUrl: undefined,
      redisUrl: undefined,
      jwtSecret: undefined,
      trustProxy: false,
      rateLimit: { votesPerMinute: 10, reactionsPerMinute: 30, messagesPerMinute: 30 },
      fraudDetectionEnabled: true,
      tallyFlushMs: 100,
      reactionWindowMs: 250,
      typingTtlMs: 5000,
      presenceOfflineGraceMs: 5000,
      maxSubscriptionsPerConnection: 100,
      outboxSweepMs: 1000,
      outboxTestCrashAfterCommit: undefined,
    });
  });

  it('reads every variable it documents', () => {
    const config = loadConfig({
      PORT: '8080',
      DATA_DIR: '/tmp/x',
      DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
      REDIS_URL: 'redis://127.0.0.1:6379',
      JWT_SECRET: 'x'.repeat(32),
      TRUST_PROXY: 'true',
      RATE_LIMIT_VOTES_PER_MINUTE: '5',
      FRAUD_DETECTION_ENABLED: 'false',
      TALLY_FLUSH_MS: '250',
    });
    expect(config).toMatchObject({
      port: 8080,
      dataDir: '/tmp/x',
      databaseUrl: 'postgres://u:p@127.0.0.1:5432/db',
      redisUrl: 'redis://127.0.0.1:6379',
      trustProxy: true,
      rateLimit: { votesPerMinute: 5 },
      fraudDetectionEnabled: false,
      tallyFlushMs: 250,
    });
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '12abc'],
    ['TALLY_FLUSH_MS', '0'],
    ['TRUST_PROXY', 'maybe'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'http://127.0.0.1'],
    ['JWT_SECRET', 'short'],
    ['NODE_ENV', 'staging'],
    ['LOG_LEVEL', 'loud'],
    ['OUTBOX_SWEEP_MS', '-1'],
    // A test-only fault: refused outside NODE_ENV=test (unset here means development).
    ['OUTBOX_TEST_CRASH_AFTER_COMMIT', 'message.committed'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(name);
    expect((error as ConfigError).message).toContain(name);
  });

  describe('JWT_SECRET with NODE_ENV=production', () => {
    it.each([
      ["docker-compose.yml's former default", 'change-me-change-me-change-me-change-me'],
      ['a placeholder word', 'please-change-me-before-going-live-0123456789'],
      ['a repeated character', 'x'.repeat(32)],
      ['a repeated short word', 'abcabcabcabcabcabcabcabcabcabcabc'],
    ])('refuses %s, naming the variable', (_, secret) => {
      expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret })).toThrow(
        /^Invalid configuration: JWT_SECRET /,
      );
      expect(() => loadConfig({ NODE_ENV: 'development', JWT_SECRET: secret })).not.toThrow(); // only production refuses
    });

    it.each([
      ['base64 (openssl rand -base64 48)', 'qL7v0kq9oJ0mX9kFv5mS1o8mR9q2Hc0yq0a7Pq8i3nQyZk2yWl1b3E9c4K8d7Xq1'],
      ['hex (openssl rand -hex 32)', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
    ])('accepts a random secret: %s', (_, secret) => {
      expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret }).jwtSecret).toBe(secret);
    });
  });

  it('honours OUTBOX_TEST_CRASH_AFTER_COMMIT only with NODE_ENV=test, and only for a durable event', () => {
    const env = { NODE_ENV: 'test', OUTBOX_TEST_CRASH_AFTER_COMMIT: 'message.committed' };
    expect(loadConfig(env).outboxTestCrashAfterCommit).toBe('message.committed');
    expect(() => loadConfig({ ...env, NODE_ENV: 'development' })).toThrow(/only with NODE_ENV=test/);
    expect(() => loadConfig({ ...env, OUTBOX_TEST_CRASH_AFTER_COMMIT: 'tally.published' })).toThrow(
      /must be one of competition.statusChanged, offers.committed, message.committed, session.changed/,
    );
  });

  describe('WORKERS', () => {
    const shared = { DATABASE_URL: 'postgres://127.0.0.1/db', REDIS_URL: 'redis://127.0.0.1' };
    it.each([
      [undefined, {}, 1],
      ['1', {}, 1],
      ['3', shared, 3],
      ['auto', shared, os.availableParallelism()],
      ['AUTO', shared, os.availableParallelism()],
    ])('WORKERS=%s (%o) reads as %i', (value, env, expected) => {
      expect(loadConfig({ ...env, ...(value === undefined ? {} : { WORKERS: value }) }).workers).toBe(expected);
    });

    it.each([['0'], ['-1'], ['1.5'], ['two'], ['257']])('rejects WORKERS=%s, naming it', (value) => {
      expect(() => loadConfig({ ...shared, WORKERS: value })).toThrow(/^Invalid configuration: WORKERS /);
    });

    it.each([
      ['2', {}, 'DATABASE_URL and REDIS_URL'],
      ['2', { DATABASE_URL: shared.DATABASE_URL }, 'REDIS_URL'],
      ['2', { REDIS_URL: shared.REDIS_URL }, 'DATABASE_URL'],
      // auto needs them even on a one-core machine: the same configuration must start everywhere.
      ['auto', {}, 'DATABASE_URL and REDIS_URL'],
    ])('refuses WORKERS=%s without the shared services (%o), naming them', (value, env, missing) => {
      expect(() => loadConfig({ ...env, WORKERS: value })).toThrow(
        `Invalid configuration: WORKERS ${value} needs ${missing}: `,
      );
    });
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: ' ' })).toMatchObject({ port: 4000, databaseUrl: undefined });
  });
});
