/** Presence derivation: connections × activity × hand-set status × grace, at a fixed clock. */
import { describe, expect, it } from 'vitest';
import {
  derivePresence,
  nextDeadline,
  nextPresenceSeq,
  type PresenceFacts,
} from '../../src/modules/presence/presence.rules.js';

const rules = { awayAfterMs: 1_000, offlineGraceMs: 500 };
const NOW = 10_000;
const iso = (ms: number) => new Date(ms).toISOString();

const facts = (f: Partial<PresenceFacts>): PresenceFacts => ({
  now: NOW,
  connections: 0,
  endedAt: null,
  lastActivityAt: null,
  manual: null,
  statusMessage: null,
  ...f,
});

describe('derivePresence', () => {
  it.each([
    ['connected and active', { connections: 1, lastActivityAt: 9_500 }, 'ONLINE', 1, null, null],
    ['connected, idle exactly awayAfter', { connections: 1, lastActivityAt: 9_000 }, 'AWAY', 1, null, null],
    ['connected, one ms short of away', { connections: 1, lastActivityAt: 9_001 }, 'ONLINE', 1, null, null],
    [
      'DND wins over idle',
      { connections: 2, lastActivityAt: 8_000, manual: 'DND', statusMessage: 'focus' },
      'DND',
      2,
      'focus',
      null,
    ],
    ['AWAY by hand while active', { connections: 1, lastActivityAt: 9_900, manual: 'AWAY' }, 'AWAY', 1, null, null],
    [
      'within the grace: keeps ONLINE, 0 connections',
      { endedAt: 9_800, lastActivityAt: 9_700 },
      'ONLINE',
      0,
      null,
      iso(9_800),
    ],
    [
      'within the grace: DND and message held',
      { endedAt: 9_600, lastActivityAt: 9_600, manual: 'DND', statusMessage: 'x' },
      'DND',
      0,
      'x',
      iso(9_600),
    ],
    ['within the grace but idle', { endedAt: 9_900, lastActivityAt: 8_500 }, 'AWAY', 0, null, iso(9_900)],
    ['grace over exactly', { endedAt: 9_500, lastActivityAt: 9_500 }, 'OFFLINE', 0, null, iso(9_500)],
    [
      'grace over: DND and message cleared',
      { endedAt: 9_000, manual: 'DND', statusMessage: 'x' },
      'OFFLINE',
      0,
      null,
      iso(9_000),
    ],
    ['never connected', {}, 'OFFLINE', 0, null, null],
  ] as const)('%s', (_name, f, status, connections, statusMessage, lastSeenAt) => {
    expect(derivePresence('u1', facts(f), rules)).toEqual({
      userId: 'u1',
      status,
      statusMessage,
      connections,
      lastSeenAt,
    });
  });

  it('a grace of 0 is OFFLINE the moment the last connection ends', () => {
    expect(
      derivePresence('u1', facts({ endedAt: NOW, lastActivityAt: NOW }), { ...rules, offlineGraceMs: 0 }).status,
    ).toBe('OFFLINE');
  });
});

describe('nextDeadline', () => {
  it.each([
    ['active: when it turns AWAY', { connections: 1, lastActivityAt: 9_500 }, 10_500],
    ['already AWAY: only a new fact changes it', { connections: 1, lastActivityAt: 8_000 }, null],
    ['DND: no time-based change', { connections: 1, lastActivityAt: 9_500, manual: 'DND' }, null],
    ['in the grace: its end', { endedAt: 9_800, lastActivityAt: 9_800 }, 10_300],
    ['in the grace, AWAY comes first', { endedAt: 9_900, lastActivityAt: 9_200 }, 10_200],
    ['OFFLINE: nothing', { endedAt: 9_000 }, null],
  ] as const)('%s', (_name, f, deadline) => {
    expect(nextDeadline(facts(f), rules)).toBe(deadline);
  });
});

describe('nextPresenceSeq', () => {
  it('grows by one, and never falls below the clock (records may be forgotten)', () => {
    expect(nextPresenceSeq(5, 3)).toBe(6);
    expect(nextPresenceSeq(0, 1_700_000_000_000)).toBe(1_700_000_000_000);
    expect(nextPresenceSeq(1_700_000_000_005, 1_700_000_000_001)).toBe(1_700_000_000_006);
  });
});
