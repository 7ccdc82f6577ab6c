/**
 * COMPRESS DEFLATE (RFC 4978): after the tagged OK, both directions carry a raw DEFLATE
 * stream (RFC 1951). The driver does the compressing; the session drops any input buffered
 * behind the command, which cannot be compressed data yet.
 */
import type { CommandSpec } from "../context.ts";
import { ImapError } from "../errors.ts";

export const compressCommand: CommandSpec = {
  name: "COMPRESS",
  states: ["authenticated", "selected"],
  allowsExpunge: false,
  run(ctx, r) {
    r.sp();
    const mechanism = r.atom("compression mechanism").toUpperCase();
    r.end();
    if (ctx.compressed) {
      throw new ImapError("NO", "Compression is already active", "COMPRESSIONACTIVE");
    }
    if (!ctx.capabilities().includes("COMPRESS=DEFLATE")) {
      throw new ImapError("BAD", "COMPRESS is not available");
    }
    if (mechanism !== "DEFLATE") throw new ImapError("BAD", "Unknown compression mechanism");
    ctx.requestCompress();
    return Promise.resolve({ text: "DEFLATE active" });
  },
};
