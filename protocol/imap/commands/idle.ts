/**
 * IDLE (RFC 2177; RFC 9051, Section 6.3.13): after `+ idling`, changes to the selected mailbox
 * are sent as they happen, until the client sends DONE.
 */
import type { CommandSpec, Completion } from "../context.ts";
import { ImapError } from "../errors.ts";

export const idleCommand: CommandSpec = {
  name: "IDLE",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  run(ctx, r) {
    r.end();
    ctx.awaitInput({ kind: "idle", tag: ctx.tag });
    ctx.out.line("+ idling");
    return Promise.resolve(null);
  },
};

/** The line that ends IDLE. */
export function continueIdle(line: string): Completion {
  if (line.toUpperCase() !== "DONE") throw new ImapError("BAD", "Expected DONE");
  return { text: "IDLE terminated" };
}
