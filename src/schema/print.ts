/** Prints the checked-in schema.graphql from the Pothos schema (`npm run schema:print`). */
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from './index.js';

export const printedSchema = (): string => printSchema(lexicographicSortSchema(schema)) + '\n';
