/** NOOP (RFC 9051, Section 6.1.2) and CHECK (RFC 3501, Section 6.4.1): report pending updates. */
import type { CommandSpec } from "../context.ts";

export const noopCommand: CommandSpec = {
  name: "NOOP",
  states: ["notAuthenticated", "authenticated", "selected"],
  allowsExpunge: true,
  run(_ctx, r) {
    r.end();
    return Promise.resolve({ text: "NOOP completed" });
  },
};

/** CHECK is gone from IMAP4rev2 but IMAP4rev1 clients still send it; every change is durable. */
export const checkCommand: CommandSpec = {
  name: "CHECK",
  states: ["selected"],
  allowsExpunge: true,
  run(_ctx, r) {
    r.end();
    return Promise.resolve({ text: "CHECK completed" });
  },
};
