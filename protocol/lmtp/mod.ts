/**
 * A sans-IO LMTP engine (RFC 2033 on RFC 5321) with PIPELINING (RFC 2920),
 * ENHANCEDSTATUSCODES (RFC 2034), 8BITMIME (RFC 6152), SIZE (RFC 1870), CHUNKING (RFC 3030)
 * and SMTPUTF8 (RFC 6531).
 *
 * Driver contract: write `greeting()`, then pass every chunk read from the connection to
 * `receive()` and await it before reading on; write whatever `onOutput` hands over, in order;
 * close the connection after `onClose`. Call `checkTimeout()` every few seconds and
 * `shutdown()` when the server stops.
 */
export {
  type Command,
  formatMailbox,
  type Mailbox,
  parseCommand,
  parseMailbox,
  parsePath,
} from "./command.ts";
export { type DataProblem, DataReader, type FeedResult } from "./data_reader.ts";
export { encodeReply, formatReply, isPositive, type LmtpReply, reply } from "./reply.ts";
export {
  defaultLmtpLimits,
  type Envelope,
  type LmtpBackend,
  type LmtpLimits,
  LmtpSession,
  type LmtpSessionOptions,
  type RecipientVerdict,
} from "./session.ts";
