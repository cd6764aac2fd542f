import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../../src/schema/print.js';

describe('schema.graphql', () => {
  it('is the printed Pothos schema (run `npm run schema:print` after changing the API)', () => {
    const checkedIn = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    expect(checkedIn).toBe(printedSchema());
  });

  it("keeps every name, argument and type of the contract's implemented operations", () => {
    const ours = buildSchema(printedSchema());
    // The contract lives in the workspace's shared/ folder, beside the project root.
    const contractFile = new URL('../../../shared/api-contract.graphql', import.meta.url);
    const contract = buildSchema(readFileSync(contractFile, 'utf8'));
    const signature = (schemaType: ReturnType<typeof ours.getQueryType>, name: string) => {
      const field = schemaType?.getFields()[name];
      // Arguments are named, so their order is not part of the API (the printed schema sorts them).
      const args = field?.args.map((a) => `${a.name}: ${a.type}`).sort();
      return field && `${field.name}(${args!.join(', ')}): ${field.type}`;
    };
    for (const root of ['getQueryType', 'getMutationType', 'getSubscriptionType'] as const) {
      for (const name of Object.keys(ours[root]()?.getFields() ?? {})) {
        const theirs = signature(contract[root](), name);
        if (theirs) expect(signature(ours[root](), name)).toBe(theirs);
      }
    }
  });
});
