/**
 * The connection registry (src/realtime/connections.ts) and the connection guard
 * (guardConnections, src/guards/streams.ts), without a network: counts per transport, what
 * observers are told and when, nested connections, and the end of a connection at its token's
 * exp, on revocation and after a refresh.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { unauthenticated, type AppError } from '../../src/errors.js';
import type { UserAccess } from '../../src/guards/access.js';
import type { Viewer } from '../../src/guards/auth.js';
import { guardConnections } from '../../src/guards/streams.js';
import { createConnectionRegistry, type ConnectionWatch } from '../../src/realtime/connections.js';

const viewer = (id: string, expiresAt?: number): Viewer => ({
  id,
  role: 'AUDIENCE',
  name: id,
  ...(expiresAt !== undefined && { expiresAt }),
});

function setup() {
  const errors: string[] = [];
  const registry = createConnectionRegistry({ onError: (message) => errors.push(message) });
  const log: string[] = [];
  registry.observe((c) => {
    log.push(`+${c.viewer!.id}/${c.transport}${c.nested ? '/nested' : ''}`);
    return { closed: () => log.push(`-${c.viewer!.id}`), refreshed: (v) => log.push(`~${v.id}`) };
  });
  return { registry, log, errors };
}

describe('connection registry', () => {
  it('counts open transport connections and their unsent bytes per transport; nested ones are not sockets', () => {
    const { registry } = setup();
    const ws = registry.open('ws', { backlog: () => 10 });
    const sse = registry.open('sse', { viewer: viewer('a'), backlog: () => 5 });
    registry.open('graphql-sse', { viewer: viewer('b'), backlog: () => 7 });
    registry.open('graphql-sse');
    ws.nest(viewer('c'));
    expect(registry.counts()).toEqual({ ws: 1, sse: 1, 'graphql-sse': 2 });
    expect(registry.bufferedBytes()).toEqual({ ws: 10, sse: 5, 'graphql-sse': 7 });
    ws.close();
    sse.close();
    sse.close();
    expect(registry.counts()).toEqual({ ws: 0, sse: 0, 'graphql-sse': 2 });
  });

  it('tells observers about connections that act for a viewer, once each way; anonymous ones are only counted', () => {
    const { registry, log } = setup();
    const anonymous = registry.open('graphql-sse');
    anonymous.close();
    const ws = registry.open('ws');
    expect(log).toEqual([]);
    void ws.identify(viewer('ann'));
    void ws.identify(viewer('other')); // a connection is identified once
    ws.refresh(viewer('ann'));
    const op = ws.nest(viewer('bob'));
    const done = ws.nest(viewer('cat'));
    done.close();
    expect(log).toEqual(['+ann/ws', '~ann', '+bob/ws/nested', '+cat/ws/nested', '-cat']);
    ws.close(); // its nested connections end with it
    ws.close();
    op.close();
    expect(log).toEqual(['+ann/ws', '~ann', '+bob/ws/nested', '+cat/ws/nested', '-cat', '-bob', '-ann']);
    // Nothing after close: a socket that left while it was authenticated.
    void ws.identify(viewer('late'));
    ws.refresh(viewer('late'));
    expect(ws.nest(viewer('late')).closed).toBe(true);
    expect(log).toHaveLength(7);
  });

  it('ready waits for every observer’s ready; an observer that throws is reported and breaks nothing', async () => {
    const { registry, errors, log } = setup();
    let release!: () => void;
    registry.observe(() => ({ ready: new Promise<void>((r) => (release = r)), closed: () => undefined }));
    registry.observe(() => {
      throw new Error('observer bug');
    });
    const connection = registry.open('sse', { viewer: viewer('dan') });
    let ready = false;
    void connection.ready.then(() => (ready = true));
    await Promise.resolve();
    expect(ready).toBe(false);
    release();
    await connection.ready;
    expect(errors).toEqual(['connections: identifying a connection failed']);
    connection.close();
    expect(log).toEqual(['+dan/sse', '-dan']);
    await expect(registry.open('ws').ready).resolves.toBeUndefined(); // anonymous: at once
  });
});

describe('guardConnections', () => {
  let revoke: Map<string, (reason: AppError) => void>;
  let stopped: string[];
  const access = {
    watchUser: (v: Viewer, onEnd: (reason: AppError) => void) => {
      revoke.set(v.id, onEnd);
      return () => stopped.push(v.id);
    },
  } as unknown as UserAccess;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    revoke = new Map();
    stopped = [];
  });
  afterEach(() => vi.useRealTimers());

  function guarded() {
    const registry = createConnectionRegistry({ onError: () => undefined });
    registry.observe(guardConnections(access));
    const ends: string[] = [];
    const open = (id: string, expiresAt?: number) => {
      const connection = registry.open('graphql-sse', { end: (reason) => ends.push(`${id}: ${reason.message}`) });
      void connection.identify(viewer(id, expiresAt));
      return connection;
    };
    return { registry, ends, open };
  }

  it('ends a connection at its token’s exp, and a refresh moves the deadline', () => {
    const { ends, open } = guarded();
    open('exp', 1_010); // epoch seconds: 10 s from now
    const refreshed = open('refreshed', 1_010);
    refreshed.refresh(viewer('refreshed', 1_030));
    vi.advanceTimersByTime(10_000);
    expect(ends).toEqual(['exp: token expired']);
    vi.advanceTimersByTime(20_000);
    expect(ends).toEqual(['exp: token expired', 'refreshed: token expired']);
  });

  it('ends it with the reason when the user’s tokens are revoked; stops watching when it closes', () => {
    const { ends, open } = guarded();
    open('revoked');
    revoke.get('revoked')!(unauthenticated('account disabled'));
    expect(ends).toEqual(['revoked: account disabled']);
    const closed = open('closed', 1_010);
    closed.close();
    expect(stopped).toContain('closed');
    vi.advanceTimersByTime(20_000);
    expect(ends).toEqual(['revoked: account disabled']);
  });

  it('leaves alone what its transport guards per operation (no `end`) and anonymous connections', () => {
    const registry = createConnectionRegistry({ onError: () => undefined });
    const watches: (ConnectionWatch | undefined)[] = [];
    const guard = guardConnections(access);
    registry.observe((c) => {
      const watch = guard(c);
      watches.push(watch);
      return watch;
    });
    registry.open('sse', { viewer: viewer('distinct', 1_001) });
    registry.open('ws', { end: () => undefined }).nest(viewer('nested', 1_001));
    expect(watches).toEqual([undefined, undefined]);
    expect(revoke.size).toBe(0);
  });
});
