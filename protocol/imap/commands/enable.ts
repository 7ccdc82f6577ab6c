/** ENABLE (RFC 5161; RFC 9051, Section 6.3.1). Unknown extensions are ignored. */
import type { CommandSpec } from "../context.ts";
import { ENABLEABLE } from "../capabilities.ts";

export const enableCommand: CommandSpec = {
  name: "ENABLE",
  states: ["authenticated"],
  allowsExpunge: true,
  run(ctx, r) {
    const names: string[] = [];
    do {
      r.sp();
      names.push(r.atom("capability"));
    } while (!r.atEnd());
    const newly: string[] = [];
    for (const name of names) {
      const key = name.toUpperCase();
      if (!ENABLEABLE.has(key) || ctx.enabled.has(key)) continue;
      ctx.enable(key);
      // QRESYNC implies CONDSTORE (RFC 7162, Section 3.2.3).
      if (key === "QRESYNC") ctx.enable("CONDSTORE");
      newly.push(name);
    }
    ctx.out.line(`* ENABLED${newly.map((n) => " " + n).join("")}`);
    return Promise.resolve({ text: "ENABLE completed" });
  },
};
