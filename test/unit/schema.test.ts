import { readFileSync } from 'node:fs';
import {
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isNonNullType,
  isObjectType,
  isUnionType,
  type GraphQLArgument,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../../src/schema/print.js';

/**
 * The whole contract, element by element: every type, enum value, union member, field and
 * argument of ../shared/api-contract.graphql must exist in our schema with exactly the contract's
 * type (nullability included), and nothing we add may make a contract client's request invalid
 * (a new required argument on a contract field, a new required field on a contract input).
 * Elements not implemented yet are listed in test/contract-pending.json with the work that adds
 * them; that list only shrinks (a listed element that exists fails too).
 */
interface Finding {
  element: string;
  problem: 'missing' | 'differs' | 'breaks clients';
  detail: string;
}

const kindOf = (t: GraphQLNamedType): string =>
  isObjectType(t)
    ? 'type'
    : isInterfaceType(t)
      ? 'interface'
      : isInputObjectType(t)
        ? 'input'
        : isEnumType(t)
          ? 'enum'
          : isUnionType(t)
            ? 'union'
            : 'scalar';

const requiredWithoutDefault = (a: { type: unknown; defaultValue?: unknown }): boolean =>
  isNonNullType(a.type) && a.defaultValue === undefined;

export function compareWithContract(contract: GraphQLSchema, ours: GraphQLSchema): Finding[] {
  const findings: Finding[] = [];
  const missing = (element: string, detail: string) => findings.push({ element, problem: 'missing', detail });
  for (const [name, want] of Object.entries(contract.getTypeMap())) {
    if (name.startsWith('__')) continue;
    const have = ours.getType(name);
    if (!have) {
      missing(name, `${kindOf(want)} ${name}`);
      continue;
    }
    if (kindOf(have) !== kindOf(want)) {
      findings.push({ element: name, problem: 'differs', detail: `is ${kindOf(have)}, contract says ${kindOf(want)}` });
      continue;
    }
    if (isEnumType(want) && isEnumType(have)) {
      const values = new Set(have.getValues().map((v) => v.name));
      for (const v of want.getValues())
        if (!values.has(v.name)) missing(`${name}.${v.name}`, `enum value ${name}.${v.name}`);
    } else if (isUnionType(want) && isUnionType(have)) {
      const members = new Set(have.getTypes().map((t) => t.name));
      for (const t of want.getTypes())
        if (!members.has(t.name)) missing(`${name}|${t.name}`, `union member ${t.name} of ${name}`);
    } else if (isInputObjectType(want) && isInputObjectType(have)) {
      const fields = have.getFields();
      const wanted = want.getFields();
      for (const [fname, wf] of Object.entries(wanted)) {
        const hf = fields[fname];
        if (!hf) missing(`${name}.${fname}`, `input field ${name}.${fname}: ${String(wf.type)}`);
        else if (String(hf.type) !== String(wf.type))
          findings.push({
            element: `${name}.${fname}`,
            problem: 'differs',
            detail: `is ${String(hf.type)}, contract says ${String(wf.type)}`,
          });
      }
      for (const [fname, hf] of Object.entries(fields)) {
        if (!wanted[fname] && requiredWithoutDefault(hf))
          findings.push({
            element: `${name}.${fname}`,
            problem: 'breaks clients',
            detail: `required input field ${name}.${fname} is not in the contract`,
          });
      }
    } else if ((isObjectType(want) || isInterfaceType(want)) && (isObjectType(have) || isInterfaceType(have))) {
      const fields = have.getFields();
      for (const [fname, wf] of Object.entries(want.getFields())) {
        const element = `${name}.${fname}`;
        const hf = fields[fname];
        if (!hf) {
          missing(element, `field ${element}: ${String(wf.type)}`);
          for (const a of wf.args)
            missing(`${element}(${a.name})`, `argument ${element}(${a.name}: ${String(a.type)})`);
          continue;
        }
        if (String(hf.type) !== String(wf.type))
          findings.push({
            element,
            problem: 'differs',
            detail: `is ${String(hf.type)}, contract says ${String(wf.type)}`,
          });
        const ourArgs = new Map<string, GraphQLArgument>(hf.args.map((a) => [a.name, a]));
        for (const wa of wf.args) {
          const ha = ourArgs.get(wa.name);
          if (!ha) missing(`${element}(${wa.name})`, `argument ${element}(${wa.name}: ${String(wa.type)})`);
          else if (String(ha.type) !== String(wa.type))
            findings.push({
              element: `${element}(${wa.name})`,
              problem: 'differs',
              detail: `is ${String(ha.type)}, contract says ${String(wa.type)}`,
            });
        }
        const contractArgs = new Set(wf.args.map((a) => a.name));
        for (const ha of hf.args) {
          if (!contractArgs.has(ha.name) && requiredWithoutDefault(ha))
            findings.push({
              element: `${element}(${ha.name})`,
              problem: 'breaks clients',
              detail: `required argument ${ha.name} is not in the contract`,
            });
        }
      }
    }
  }
  return findings;
}

function loadContract(): GraphQLSchema {
  // The contract lives in the workspace's shared/ folder, beside the project root.
  return buildSchema(readFileSync(new URL('../../../shared/api-contract.graphql', import.meta.url), 'utf8'));
}

const pending: Record<string, string> = (
  JSON.parse(readFileSync(new URL('../contract-pending.json', import.meta.url), 'utf8')) as {
    pending: Record<string, string>;
  }
).pending;

describe('schema.graphql', () => {
  it('is the printed Pothos schema (run `npm run schema:print` after changing the API)', () => {
    const checkedIn = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    expect(checkedIn).toBe(printedSchema());
  });
});

describe('the API contract (../shared/api-contract.graphql)', () => {
  const findings = compareWithContract(loadContract(), buildSchema(printedSchema()));

  it('every contract element exists with its exact type, unless test/contract-pending.json names the work that adds it', () => {
    const unexpected = findings
      .filter((f) => f.problem !== 'missing' || !(f.element in pending))
      .map((f) => `${f.element}: ${f.problem} (${f.detail})`);
    expect(unexpected).toEqual([]);
  });

  it('test/contract-pending.json lists only what is still missing (it only shrinks)', () => {
    const stillMissing = new Set(findings.filter((f) => f.problem === 'missing').map((f) => f.element));
    const implemented = Object.keys(pending).filter((element) => !stillMissing.has(element));
    expect(implemented, 'implemented now: remove them from test/contract-pending.json').toEqual([]);
  });

  it.each([
    ['a missing type', 'type A { x: Int } type Query { a: A }', 'type Query { b: Int }', ['A', 'Query.a']],
    ['a missing argument', 'type Query { a(x: Int): Int }', 'type Query { a: Int }', ['Query.a(x)']],
    ['a missing enum value', 'enum E { X Y } type Query { e: E }', 'enum E { X } type Query { e: E }', ['E.Y']],
    ['a nullability change', 'type Query { a: Int }', 'type Query { a: Int! }', ['Query.a']],
    ['a new required argument', 'type Query { a: Int }', 'type Query { a(x: Int!): Int }', ['Query.a(x)']],
    [
      'a new required input field',
      'input I { a: Int } type Query { q(i: I): Int }',
      'input I { a: Int b: Int! } type Query { q(i: I): Int }',
      ['I.b'],
    ],
  ])('catches %s', (_what, contractSdl, oursSdl, elements) => {
    expect(compareWithContract(buildSchema(contractSdl), buildSchema(oursSdl)).map((f) => f.element)).toEqual(elements);
  });

  it('accepts additions that keep contract clients working', () => {
    const contractSdl = 'input I { a: Int } type Query { a(x: Int): Int q(i: I): Int }';
    const oursSdl =
      'input I { a: Int b: Int c: Int! = 3 } type Query { a(x: Int, y: Int, z: Int! = 1): Int q(i: I): Int more: Int }';
    expect(compareWithContract(buildSchema(contractSdl), buildSchema(oursSdl))).toEqual([]);
  });
});
