import { describe, expect, it } from 'vitest';
import { rankEntries, totalVotes } from '../../src/modules/voting/voting.rules.js';

describe('rankEntries', () => {
  it.each([
    {
      name: 'orders by score, ties share a rank and the next rank skips (1, 1, 3)',
      counts: [
        { submissionId: 'c', votes: 1, score: 1 },
        { submissionId: 'b', votes: 5, score: 5 },
        { submissionId: 'a', votes: 5, score: 5 },
      ],
      expected: [
        { submissionId: 'a', votes: 5, score: 5, rank: 1 },
        { submissionId: 'b', votes: 5, score: 5, rank: 1 },
        { submissionId: 'c', votes: 1, score: 1, rank: 3 },
      ],
    },
    {
      name: 'keeps zero entries, all sharing rank 1 when nobody voted',
      counts: [
        { submissionId: 'y', votes: 0, score: 0 },
        { submissionId: 'x', votes: 0, score: 0 },
      ],
      expected: [
        { submissionId: 'x', votes: 0, score: 0, rank: 1 },
        { submissionId: 'y', votes: 0, score: 0, rank: 1 },
      ],
    },
    { name: 'handles an empty competition', counts: [], expected: [] },
    {
      name: 'ranks by score even when votes disagree (a fractional score)',
      counts: [
        { submissionId: 'p', votes: 3, score: 2.5 },
        { submissionId: 'q', votes: 1, score: 4 },
        { submissionId: 'r', votes: 2, score: 2.5 },
        { submissionId: 's', votes: 0, score: 0 },
      ],
      expected: [
        { submissionId: 'q', votes: 1, score: 4, rank: 1 },
        { submissionId: 'p', votes: 3, score: 2.5, rank: 2 },
        { submissionId: 'r', votes: 2, score: 2.5, rank: 2 },
        { submissionId: 's', votes: 0, score: 0, rank: 4 },
      ],
    },
  ])('$name', ({ counts, expected }) => {
    expect(rankEntries(counts)).toEqual(expected);
  });

  it('does not mutate its input and totals votes', () => {
    const counts = [
      { submissionId: 'b', votes: 2, score: 2 },
      { submissionId: 'a', votes: 3, score: 3 },
    ];
    const copy = structuredClone(counts);
    const entries = rankEntries(counts);
    expect(counts).toEqual(copy);
    expect(totalVotes(entries)).toBe(5);
  });
});
