import { Kind, type ValueNode } from 'graphql';
import { AppError, ErrorCode } from '../errors.js';
import { toGraphQLError } from './errors.js';
import { builder } from './builder.js';

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function parseDateTime(value: unknown): Date {
  if (typeof value !== 'string' || !ISO_DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw toGraphQLError(
      new AppError(
        ErrorCode.BAD_USER_INPUT,
        'DateTime must be an ISO-8601 string with a time zone, e.g. 2026-01-31T12:00:00Z',
      ),
    );
  }
  return new Date(value);
}

builder.scalarType('DateTime', {
  description: 'ISO-8601 date and time in UTC, e.g. 2026-01-31T12:00:00.000Z',
  // Events that crossed Redis carry ISO strings already; rows from Prisma carry Dates.
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value).toISOString()),
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});

function literalToJson(ast: ValueNode, variables: Record<string, unknown> | null | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v) => literalToJson(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literalToJson(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    default:
      throw toGraphQLError(new AppError(ErrorCode.BAD_USER_INPUT, 'JSON does not accept enum literals'));
  }
}

builder.scalarType('JSON', {
  description: 'Any JSON value',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => literalToJson(ast, variables),
});
