/** ID (RFC 2971): the client's parameters are read and ignored; the server names itself. */
import type { CommandSpec } from "../context.ts";
import { badSyntax } from "../errors.ts";

export const idCommand: CommandSpec = {
  name: "ID",
  states: ["notAuthenticated", "authenticated", "selected"],
  allowsExpunge: true,
  run(ctx, r) {
    r.sp();
    if (r.peekKeyword() === "NIL") {
      r.keyword();
    } else {
      const items = r.list(() => r.peekKeyword() === "NIL" ? (r.keyword(), "") : r.string());
      if (items.length % 2 !== 0 || items.length > 60) throw badSyntax("Invalid ID parameter list");
    }
    r.end();
    ctx.out.line('* ID ("name" "Postern" "vendor" "Postern")');
    return Promise.resolve({ text: "ID completed" });
  },
};
