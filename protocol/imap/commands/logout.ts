/** LOGOUT (RFC 9051, Section 6.1.3): `* BYE`, the tagged OK, then the connection closes. */
import type { CommandSpec } from "../context.ts";

export const logoutCommand: CommandSpec = {
  name: "LOGOUT",
  states: ["notAuthenticated", "authenticated", "selected"],
  allowsExpunge: false,
  run(ctx, r) {
    r.end();
    ctx.out.line("* BYE Logging out");
    ctx.setState({ kind: "logout" });
    ctx.requestClose();
    return Promise.resolve({ text: "LOGOUT completed" });
  },
};
