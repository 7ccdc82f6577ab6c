/**
 * ID (RFC 2971): the server names itself (and, to a logged-in client, adds the driver's fields,
 * such as which Worker runs the session); the client's "name" and "version" go to the driver
 * (for the access log), the other parameters are read and ignored.
 */
import type { CommandSpec } from "../context.ts";
import { badSyntax } from "../errors.ts";

/** What an extra ID field may hold, so that it needs no quoting rules. */
const SAFE = /^[A-Za-z0-9-]{1,64}$/;

export const idCommand: CommandSpec = {
  name: "ID",
  states: ["notAuthenticated", "authenticated", "selected"],
  allowsExpunge: true,
  run(ctx, r) {
    r.sp();
    const fields = new Map<string, string>();
    if (r.peekKeyword() === "NIL") {
      r.keyword();
    } else {
      const items = r.list(() => r.peekKeyword() === "NIL" ? (r.keyword(), "") : r.string());
      if (items.length % 2 !== 0 || items.length > 60) throw badSyntax("Invalid ID parameter list");
      for (let i = 0; i < items.length; i += 2) fields.set(items[i]!.toLowerCase(), items[i + 1]!);
    }
    r.end();
    const name = fields.get("name");
    if (name !== undefined) ctx.clientIdentified(name, fields.get("version") ?? null);
    const extra = ctx.state.kind === "notAuthenticated"
      ? []
      : Object.entries(ctx.idFields).filter(([k, v]) => SAFE.test(k) && SAFE.test(v));
    const more = extra.map(([k, v]) => ` "${k}" "${v}"`).join("");
    ctx.out.line(`* ID ("name" "Postern" "vendor" "Postern"${more})`);
    return Promise.resolve({ text: "ID completed" });
  },
};
