/**
 * STARTTLS (RFC 9051, Section 6.2.1). The driver starts the handshake after the tagged OK;
 * input pipelined behind the command is discarded, so no plaintext can be injected into the
 * encrypted session.
 */
import type { CommandSpec } from "../context.ts";
import { ImapError } from "../errors.ts";

/** Whether the listener offers STARTTLS is decided by the session's capability list. */
export const starttlsCommand: CommandSpec = {
  name: "STARTTLS",
  states: ["notAuthenticated"],
  allowsExpunge: false,
  run(ctx, r) {
    r.end();
    if (ctx.tls) throw new ImapError("BAD", "TLS is already active");
    if (!ctx.capabilities().includes("STARTTLS")) {
      throw new ImapError("BAD", "STARTTLS is not available");
    }
    ctx.requestStartTls();
    return Promise.resolve({ text: "Begin TLS negotiation now" });
  },
};
