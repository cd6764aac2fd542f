/**
 * The kit tests' own documents, typed as GraphQL Code Generator types them (TypedDocumentNode).
 * ReadReceipts selects no `seq`: the kit adds it to resume and must not hand it to the app.
 */
import { parse } from 'graphql';
import type { TypedDocumentNode } from '../../src/index.js';

export const ReadReceiptsDocument = parse(`
  subscription ReadReceipts($conversationId: ID!) {
    readReceiptUpdated(conversationId: $conversationId) { lastReadSeq user { id } }
  }
`) as TypedDocumentNode<
  { readReceiptUpdated: { lastReadSeq: number; user: { id: string } } },
  { conversationId: string }
>;
