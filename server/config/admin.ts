/** `admin:` — the admin socket (issue 21). */
import * as v from "valibot";
import { join } from "node:path";
import type { Positions } from "./_positions.ts";
import { describeValue, optional, path, section } from "./_schema.ts";
import { readPath } from "./_files.ts";

/** The longest Unix socket path the kernel takes (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

export const adminSchema = section({
  enabled: optional(
    v.union(
      [v.boolean(), v.literal("auto")],
      (i) => `expected true, false or auto, got ${describeValue(i.input)}`,
    ),
    "auto",
  ),
  socket: v.optional(path()),
}, "The admin socket; auto opens it only when data_dir is private");

/**
 * The admin socket. `auto` (the default) opens it only when `data_dir` is private (no group
 * or other permissions, owned by the server's user): then the socket, bound there with mode
 * 0600, can be reached by nobody else, even in the moment between bind and chmod.
 */
export interface AdminConfig {
  readonly enabled: boolean | "auto";
  /** Absolute path of the Unix socket. Default `<data_dir>/admin.sock`. */
  readonly socket: string;
}

export function readAdmin(
  file: v.InferOutput<typeof adminSchema>,
  at: Positions,
  dataDir: string,
): AdminConfig {
  const socket = file.socket === undefined
    ? join(dataDir, "admin.sock")
    : readPath(at, ["admin", "socket"], file.socket, "", false);
  // A default path that is too long only turns `auto` off (serve says so); asked for, it is
  // an error.
  const asked = file.enabled === true || file.socket !== undefined;
  if (asked && new TextEncoder().encode(socket).length > MAX_SOCKET_PATH) {
    at.fail(
      ["admin", "socket"],
      `the socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes; set admin.socket`,
    );
  }
  return { enabled: file.enabled, socket };
}
