/**
 * `npm run readme:examples [-- --check]`: README.md shows each file under examples/ verbatim. A
 * ```ts block whose first line is `// examples/<file>.ts…` is that file; this rewrites those blocks
 * from the files (`--check`: only reports the blocks that differ, exit 1). test/e2e/readme.test.ts
 * fails while they differ and runs the files, so what the README shows is what runs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface FencedBlock {
  /** The info string after the opening fence ('' for none). */
  lang: string;
  /** The lines between the fences, each ending with '\n'. */
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** `<!-- readme-test: <marker> -->` on the line right before the opening fence. */
  marker: string | undefined;
  /** 0-based line indexes of the first and last body line + 1 (end exclusive). */
  bodyStart: number;
  bodyEnd: number;
}

const FENCE = /^```(\S*)\s*$/;
const MARKER = /^<!-- readme-test: (.+?) -->$/;
const EXAMPLE = /^\/\/ (examples\/[\w.-]+\.ts)\b/;

/** Every fenced block of a Markdown text (fences at the start of a line, as README.md writes them). */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const close = lines.findIndex((text, j) => j > i && text === '```');
    if (close < 0) throw new Error(`README.md:${i + 1}: fence not closed`);
    blocks.push({
      lang: open[1]!,
      body: lines
        .slice(i + 1, close)
        .map((text) => text + '\n')
        .join(''),
      line: i + 1,
      marker: MARKER.exec(lines[i - 1] ?? '')?.[1],
      bodyStart: i + 1,
      bodyEnd: close,
    });
    i = close;
  }
  return blocks;
}

/** The examples/ file a block shows, from its first line; undefined for other blocks. */
export function exampleOf(block: FencedBlock): string | undefined {
  return EXAMPLE.exec(block.body)?.[1];
}

/** `markdown` with every example block replaced by its file's text (`read(path)`, relative to the repository). */
export function withExamples(markdown: string, read: (file: string) => string): string {
  const lines = markdown.split('\n');
  // From the last block up, so earlier line indexes stay valid.
  for (const block of fencedBlocks(markdown).reverse()) {
    const file = exampleOf(block);
    if (file === undefined) continue;
    const text = read(file);
    if (!text.endsWith('\n')) throw new Error(`${file}: must end with a newline`);
    lines.splice(block.bodyStart, block.bodyEnd - block.bodyStart, ...text.slice(0, -1).split('\n'));
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const readmePath = path.join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const synced = withExamples(readme, (file) => readFileSync(path.join(root, file), 'utf8'));
  if (process.argv.includes('--check')) {
    const stale = fencedBlocks(readme).filter((block, i) => block.body !== fencedBlocks(synced)[i]?.body);
    for (const block of stale) process.stderr.write(`README.md:${block.line}: differs from ${exampleOf(block)}\n`);
    process.exit(stale.length > 0 ? 1 : 0);
  }
  if (synced !== readme) writeFileSync(readmePath, synced);
}
