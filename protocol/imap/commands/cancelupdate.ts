/**
 * CANCELUPDATE (RFC 5267, Section 4.3): stops the updates of the searches and sorts named by
 * their tags. A tag that names no context is answered NO, as Dovecot does.
 */
import type { CommandSpec } from "../context.ts";
import { badSyntax, ImapError } from "../errors.ts";

/** Most tags one CANCELUPDATE names (a session holds few contexts anyway). */
const MAX_TAGS = 100;

export const cancelUpdateCommand: CommandSpec = {
  name: "CANCELUPDATE",
  states: ["selected"],
  allowsExpunge: false,
  run(ctx, r) {
    const tags: string[] = [];
    do {
      r.sp();
      if (tags.length >= MAX_TAGS) throw badSyntax("Too many tags");
      tags.push(r.string());
    } while (!r.atEnd());
    r.end();
    const unknown = ctx.searchUpdates.cancel(tags);
    if (unknown.length > 0) throw new ImapError("NO", "Unknown tag");
    return Promise.resolve({ text: "CANCELUPDATE completed" });
  },
};
