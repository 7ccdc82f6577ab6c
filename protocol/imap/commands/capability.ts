/** CAPABILITY (RFC 9051, Section 6.1.1). */
import type { CommandSpec } from "../context.ts";

export const capabilityCommand: CommandSpec = {
  name: "CAPABILITY",
  states: ["notAuthenticated", "authenticated", "selected"],
  allowsExpunge: true,
  run(ctx, r) {
    r.end();
    ctx.out.line(`* CAPABILITY ${ctx.capabilities().join(" ")}`);
    return Promise.resolve({ text: "CAPABILITY completed" });
  },
};
