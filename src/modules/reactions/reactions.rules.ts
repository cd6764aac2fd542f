/**
 * Pure reaction arithmetic: clock-aligned windows, the heat map grid, and the per-window
 * aggregate every store keeps and every burst / durable row is built from.
 *
 * Windows: window w covers [w * windowMs, (w + 1) * windowMs) of the server clock (epoch ms), so
 * every instance agrees on a window's identity without talking to the others.
 *
 * Heat map: HEATMAP_SIZE × HEATMAP_SIZE (8 × 8) cells over the normalised screen, row-major:
 * heatmap[row][column], rows top to bottom by y, columns left to right by x; cell =
 * floor(v * 8) clamped to 7, so x = 1 or y = 1 falls into the last cell. Reactions without a
 * position count in the totals but in no cell.
 */
import { ReactionType } from '../../generated/prisma/enums.js';

export const HEATMAP_SIZE = 8;
export const HEATMAP_CELLS = HEATMAP_SIZE * HEATMAP_SIZE;
/** Every reaction type, in the contract's order (bursts list counts in this order, zeros included). */
export const REACTION_TYPES: readonly ReactionType[] = Object.values(ReactionType);

/** The window `epochMs` falls in. */
export const windowOf = (epochMs: number, windowMs: number): number => Math.floor(epochMs / windowMs);
/** Epoch ms at which window `w` starts (inclusive). */
export const windowStartMs = (w: number, windowMs: number): number => w * windowMs;
/** Epoch ms at which window `w` ends (exclusive): the next window's start. */
export const windowEndMs = (w: number, windowMs: number): number => (w + 1) * windowMs;

/** Row or column index of a normalised coordinate in [0, 1]; 1 belongs to the last cell. */
export function heatmapIndex(v: number): number {
  return Math.min(HEATMAP_SIZE - 1, Math.floor(v * HEATMAP_SIZE));
}

/** Row-major flat cell index of a position: row (by y) * 8 + column (by x). */
export function heatmapCell(x: number, y: number): number {
  return heatmapIndex(y) * HEATMAP_SIZE + heatmapIndex(x);
}

/** One accepted reaction as the stores count it. */
export interface ReactionEntry {
  type: ReactionType;
  /** 1..10 */
  intensity: number;
  /** Flat heat map cell (see heatmapCell), or null for a reaction without a position. */
  cell: number | null;
}

/** What a window holds: reactions per type, the sum of their intensities, reactions per cell. */
export interface WindowAggregate {
  counts: Record<ReactionType, number>;
  intensity: number;
  /** HEATMAP_CELLS entries, row-major. */
  cells: number[];
}

export function emptyAggregate(): WindowAggregate {
  return {
    counts: Object.fromEntries(REACTION_TYPES.map((type) => [type, 0])) as Record<ReactionType, number>,
    intensity: 0,
    cells: new Array<number>(HEATMAP_CELLS).fill(0),
  };
}

export function addEntry(aggregate: WindowAggregate, entry: ReactionEntry): void {
  aggregate.counts[entry.type] += 1;
  aggregate.intensity += entry.intensity;
  if (entry.cell !== null) aggregate.cells[entry.cell] = (aggregate.cells[entry.cell] ?? 0) + 1;
}

export function totalOf(aggregate: WindowAggregate): number {
  return REACTION_TYPES.reduce((sum, type) => sum + aggregate.counts[type], 0);
}

/** The flat cells as rows of HEATMAP_SIZE (what the API and the durable row carry). */
export function toGrid(cells: readonly number[]): number[][] {
  return Array.from({ length: HEATMAP_SIZE }, (_, row) => cells.slice(row * HEATMAP_SIZE, (row + 1) * HEATMAP_SIZE));
}

export function toCountList(counts: Record<ReactionType, number>): { type: ReactionType; count: number }[] {
  return REACTION_TYPES.map((type) => ({ type, count: counts[type] }));
}
