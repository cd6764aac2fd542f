/**
 * `npx tsx bench/profile.ts <file.cpuprofile> [--top 30] [--from-end-ms 25000 --to-end-ms 5000]`
 * Prints self time per function and per module.
 */
import { parseArgs } from 'node:util';
import { formatSummary, summarise } from './lib/profile.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '30' },
    'from-end-ms': { type: 'string' },
    'to-end-ms': { type: 'string' },
  },
});
if (positionals.length === 0) {
  process.stderr.write('usage: npx tsx bench/profile.ts <file.cpuprofile> [--top N] [--from-end-ms A --to-end-ms B]\n');
  process.exit(2);
}
for (const file of positionals) {
  const window =
    values['from-end-ms'] !== undefined
      ? { fromEndMs: Number(values['from-end-ms']), toEndMs: Number(values['to-end-ms'] ?? 0) }
      : undefined;
  process.stdout.write(formatSummary(summarise(file, { top: Number(values.top), ...(window && { window }) })) + '\n');
}
