/** NAMESPACE (RFC 2342; RFC 9051, Section 6.3.10): one personal namespace, "/" separator. */
import type { CommandSpec } from "../context.ts";

export const namespaceCommand: CommandSpec = {
  name: "NAMESPACE",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  run(ctx, r) {
    r.end();
    ctx.out.line('* NAMESPACE (("" "/")) NIL NIL');
    return Promise.resolve({ text: "NAMESPACE completed" });
  },
};
