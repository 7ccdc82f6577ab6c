/**
 * `postern who`, `kick`, `reload` and `stats`: clients of a running server's admin socket
 * (server/admin). The socket is found through the configuration (`admin.socket`, by default
 * `<data_dir>/admin.sock`).
 */
import { type AdminCall, AdminClientError, callAdmin } from "../admin/client.ts";
import type {
  KickResult,
  ReloadResult,
  SessionRecord,
  StatsResult,
  WhoResult,
} from "../admin/protocol.ts";
import { CliError, type OptionSpec, type OptionValues, UsageError } from "./args.ts";
import type { CliIo } from "./command.ts";
import { ConfigError } from "../config/mod.ts";

interface AdminCommandInput {
  readonly values: OptionValues;
  readonly positionals: readonly string[];
  readonly io: CliIo;
}

export interface AdminCommand {
  readonly name: string;
  readonly summary: string;
  readonly details?: string;
  readonly positionals: readonly { readonly name: string; readonly optional?: boolean }[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  run(input: AdminCommandInput): Promise<number>;
}

const JSON_OPTION = {
  type: "boolean",
  description: "print the answer as JSON",
} as const satisfies OptionSpec;

/** The admin commands; `socketPath` finds the socket from the command's options. */
export function adminCommands(
  socketPath: (io: CliIo, values: OptionValues) => Promise<string>,
): AdminCommand[] {
  const call = async (io: CliIo, values: OptionValues, request: AdminCall) => {
    const path = await socketPath(io, values);
    let response;
    try {
      response = await callAdmin(path, request);
    } catch (error) {
      if (error instanceof AdminClientError) throw new CliError(error.message);
      throw error;
    }
    if (!response.ok) throw new CliError(`the server refused: ${response.error}`);
    return response.result;
  };
  return [
    {
      name: "who",
      summary: "List the sessions of the running server.",
      positionals: [],
      options: { json: JSON_OPTION },
      async run({ values, io }) {
        const result = await call(io, values, { cmd: "who" }) as WhoResult;
        io.out(values.json === true ? `${JSON.stringify(result)}\n` : formatWho(result.sessions));
        return 0;
      },
    },
    {
      name: "kick",
      summary: "End a user's sessions (or those from --peer ADDR) with BYE.",
      details: "ADDR is host:port for one connection, or a host for all of its connections.",
      positionals: [{ name: "USER", optional: true }],
      options: {
        peer: { type: "string", value: "ADDR", description: "kick sessions from this peer" },
      },
      async run({ values, positionals, io }) {
        const user = positionals[0];
        const peer = typeof values.peer === "string" ? values.peer : undefined;
        if ((user === undefined) === (peer === undefined)) {
          throw new UsageError("kick needs a USER or --peer ADDR (not both)", "kick");
        }
        const request: AdminCall = user !== undefined
          ? { cmd: "kick", user }
          : { cmd: "kick", peer: peer! };
        const { kicked } = await call(io, values, request) as KickResult;
        io.out(`${kicked} ${kicked === 1 ? "session" : "sessions"} ended\n`);
        return kicked > 0 ? 0 : 1;
      },
    },
    {
      name: "reload",
      summary: "Re-read the configuration and certificates (as SIGHUP); say if it was taken.",
      positionals: [],
      options: {},
      async run({ values, io }) {
        let result: ReloadResult;
        try {
          result = await call(io, values, { cmd: "reload" }) as ReloadResult;
        } catch (error) {
          // The file the server would re-read does not even parse here: nothing is sent.
          if (!(error instanceof ConfigError)) throw error;
          result = { taken: false, error: error.message };
        }
        if (result.taken) {
          io.out("new configuration taken\n");
          return 0;
        }
        io.err(`new configuration refused, the old one still runs:\n${result.error ?? ""}\n`);
        return 1;
      },
    },
    {
      name: "stats",
      summary: "Print the running server's key counters.",
      positionals: [],
      options: { json: JSON_OPTION },
      async run({ values, io }) {
        const result = await call(io, values, { cmd: "stats" }) as StatsResult;
        if (values.json === true) io.out(`${JSON.stringify(result)}\n`);
        else {
          const width = Math.max(...Object.keys(result.counters).map((k) => k.length)) + 2;
          for (const [name, value] of Object.entries(result.counters)) {
            io.out(`${name.padEnd(width)}${value}\n`);
          }
        }
        return 0;
      },
    },
  ];
}

/** The `who` table: one row per session, `-` for what a session does not have. */
export function formatWho(sessions: readonly SessionRecord[]): string {
  const header = ["USER", "PEER", "LISTENER", "TLS", "CERTIFICATE", "SINCE", "MAILBOX"];
  const rows = sessions.map((s) =>
    [
      s.user ?? "-",
      s.peer,
      s.listener,
      s.tlsVersion === null ? "-" : `${s.tlsVersion} ${s.tlsSuite ?? ""}`.trim(),
      s.certificateSubject ?? "-",
      s.since.replace(/\.\d+Z$/, "Z"),
      s.mailbox ?? "-",
    ].map(printable)
  );
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n")
    .join("");
}

/** Control characters from names a client chose never reach the terminal. */
function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, "?");
}
