/** The voting math, with cases computed by hand. */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { bordaPoints, parseBallot, quadraticCost, type BallotInput } from '../../src/modules/voting/voting.rules.js';
import { instantRunoff } from '../../src/modules/voting/voting.rules.js';
import type { VotingMethod } from '../../src/generated/prisma/enums.js';

const IDS = new Set(['a', 'b', 'c', 'd']);

function fieldOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return [error.code, error.details['field']];
    throw error;
  }
  return 'accepted';
}

describe('parseBallot', () => {
  it.each<[VotingMethod, BallotInput, unknown]>([
    ['SIMPLE', { submissionId: 'a' }, { method: 'SIMPLE', submissionId: 'a' }],
    ['QUADRATIC', { submissionId: 'b', votes: 3 }, { method: 'QUADRATIC', submissionId: 'b', votes: 3 }],
    ['QUADRATIC', { submissionId: 'b', votes: 0 }, { method: 'QUADRATIC', submissionId: 'b', votes: 0 }],
    ['RANKED', { ranking: ['c', 'a'] }, { method: 'RANKED', ranking: ['c', 'a'] }],
    ['APPROVAL', { approvals: ['d', 'a'] }, { method: 'APPROVAL', approvals: ['d', 'a'] }],
    ['APPROVAL', { approvals: [] }, { method: 'APPROVAL', approvals: [] }],
  ])('%s accepts %j', (method, input, expected) => {
    expect(parseBallot(method, input, IDS)).toEqual(expected);
  });

  it.each<[VotingMethod, BallotInput, string]>([
    ['SIMPLE', {}, 'input.submissionId'],
    ['SIMPLE', { submissionId: 'zzz' }, 'input.submissionId'],
    ['SIMPLE', { submissionId: 'a', votes: 1 }, 'input.votes'],
    ['QUADRATIC', { submissionId: 'a' }, 'input.votes'],
    ['QUADRATIC', { submissionId: 'a', votes: -1 }, 'input.votes'],
    ['QUADRATIC', { submissionId: 'a', votes: 1.5 }, 'input.votes'],
    ['QUADRATIC', { votes: 2 }, 'input.submissionId'],
    ['QUADRATIC', { submissionId: 'a', votes: 2, ranking: ['a'] }, 'input.ranking'],
    ['RANKED', { ranking: [] }, 'input.ranking'],
    ['RANKED', { ranking: ['a', 'b', 'a'] }, 'input.ranking[2]'],
    ['RANKED', { ranking: ['a', 'x'] }, 'input.ranking[1]'],
    ['RANKED', { ranking: ['a'], submissionId: 'a' }, 'input.submissionId'],
    ['APPROVAL', { approvals: ['b', 'b'] }, 'input.approvals[1]'],
    ['APPROVAL', { approvals: ['nope'] }, 'input.approvals[0]'],
    ['APPROVAL', { submissionId: 'a' }, 'input.submissionId'],
  ])('%s rejects %j naming %s', (method, input, field) => {
    expect(fieldOf(() => parseBallot(method, input, IDS))).toEqual(['BAD_USER_INPUT', field]);
  });
});

describe('quadratic cost and Borda points', () => {
  it.each([
    [[], 0],
    [[1], 1],
    [[3, 4], 25],
    [[2, 2, 2], 12],
    [[10], 100],
  ])('votes %j cost %i credits', (votes, cost) => {
    expect(quadraticCost(votes)).toBe(cost);
  });

  it.each([
    [4, 1, 3],
    [4, 4, 0],
    [3, 2, 1],
    [1, 1, 0],
  ])('with %i submissions, position %i earns %i points', (n, position, points) => {
    expect(bordaPoints(n, position)).toBe(points);
  });
});

describe('instantRunoff', () => {
  it('declares a first-round majority at once', () => {
    const result = instantRunoff(['a', 'b', 'c'], [['a'], ['a', 'b'], ['a'], ['b'], ['c']]);
    expect(result.winnerId).toBe('a');
    expect(result.rounds).toHaveLength(1);
    expect(result.rounds[0]!.tallies).toEqual([
      { submissionId: 'a', votes: 3 },
      { submissionId: 'b', votes: 1 },
      { submissionId: 'c', votes: 1 },
    ]);
  });

  it('transfers eliminated votes to the next preference (hand-counted)', () => {
    // 9 ballots. Round 1: a 4, b 3, c 2 → c out; its two ballots go to b → b 5 of 9 wins.
    const ballots = [['a'], ['a'], ['a'], ['a', 'c'], ['b'], ['b'], ['b', 'a'], ['c', 'b'], ['c', 'b']];
    const result = instantRunoff(['a', 'b', 'c'], ballots);
    expect(result.rounds.map((r) => [r.tallies.map((t) => `${t.submissionId}:${t.votes}`), r.eliminated])).toEqual([
      [['a:4', 'b:3', 'c:2'], ['c']],
      [['b:5', 'a:4'], []],
    ]);
    expect(result.winnerId).toBe('b');
  });

  it('counts exhausted ballots and needs a majority of the ballots still in play', () => {
    // Round 1: a 2, b 2, c 1 → c out; its ballot ranked only c → exhausted.
    // Round 2: a 2, b 2 of 4 active: no majority; tie for last: same first-round votes → greater id (b) out.
    const result = instantRunoff(['a', 'b', 'c'], [['a'], ['a'], ['b'], ['b'], ['c']]);
    expect(result.rounds[1]).toMatchObject({ exhaustedBallots: 1, eliminated: ['b'] });
    expect(result.winnerId).toBe('a');
    expect(result.rounds).toHaveLength(3);
  });

  it('eliminates submissions nobody ranked first before others', () => {
    const result = instantRunoff(
      ['a', 'b', 'z'],
      [
        ['a', 'z'],
        ['b', 'z'],
        ['a', 'b'],
        ['b', 'a'],
      ],
    );
    expect(result.rounds.map((r) => r.eliminated)).toEqual([['z'], ['b'], []]);
    expect(result.winnerId).toBe('a');
  });

  it('counts a weighted ranking as that many identical ballots (the close groups them in SQL)', () => {
    const ballots = [['a'], ['a'], ['a'], ['a', 'c'], ['b'], ['b'], ['b', 'a'], ['c', 'b'], ['c', 'b']];
    const grouped = new Map<string, number>();
    for (const ballot of ballots) grouped.set(ballot.join(), (grouped.get(ballot.join()) ?? 0) + 1);
    const rankings = [...grouped.keys()];
    const weighted = instantRunoff(
      ['a', 'b', 'c'],
      rankings.map((r) => r.split(',')),
      rankings.map((r) => grouped.get(r)!),
    );
    expect(weighted).toEqual(instantRunoff(['a', 'b', 'c'], ballots));
    expect(weighted.winnerId).toBe('b');
    // Exhausted ballots are weighted too: c is out first, and its 2 voters ranked nothing else.
    expect(instantRunoff(['a', 'b', 'c'], [['a'], ['b'], ['c']], [4, 3, 2]).rounds[1]).toMatchObject({
      exhaustedBallots: 2,
    });
  });

  it('has no winner when nobody voted', () => {
    expect(instantRunoff(['a', 'b'], [])).toEqual({
      winnerId: null,
      rounds: [
        {
          round: 1,
          tallies: [
            { submissionId: 'a', votes: 0 },
            { submissionId: 'b', votes: 0 },
          ],
          eliminated: [],
          exhaustedBallots: 0,
        },
      ],
    });
  });
});
