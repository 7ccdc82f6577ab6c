/**
 * The `postern` command line: the single entry point for running and administering the server
 * (`deno task postern …`). The commands live in server/cli/ (one file per group); this file
 * dispatches to them. Mistakes on the command line print one line on stderr and exit 2;
 * failures while running print one line (or the list of configuration errors) and exit 1.
 * Nothing ever prints a stack trace.
 */
import { ConfigError } from "./config/mod.ts";
import { CliError, formatCommandHelp, parseArgs, UsageError } from "./cli/args.ts";
import { suggest } from "./config/suggest.ts";
import { MailStoreError } from "../mailstore/mail_store.ts";
import { adminCommands } from "./cli/admin.ts";
import { type CliIo, type Command, COMMON_OPTIONS, resolveConfig } from "./cli/command.ts";
import { permissionsCommand, serveCommands } from "./cli/serve.ts";
import { certsCommands } from "./cli/certs.ts";
import { userCommands } from "./cli/user.ts";
import { storeCommands } from "./cli/store.ts";
import { importCommand } from "./cli/import.ts";

export { ensureDevPki } from "./cli/dev_pki.ts";
export { type CliIo, resolveConfig } from "./cli/command.ts";

const PROGRAM = "postern";

const COMMANDS: readonly Command[] = [
  ...serveCommands,
  ...certsCommands,
  ...userCommands,
  ...storeCommands,
  importCommand,
  // who, kick, reload, stats: through the running server's admin socket.
  // They keep the network permission: the admin socket is a Unix socket.
  ...adminCommands(async (io, values) =>
    (await resolveConfig(io, values, { checkFiles: false })).admin.socket
  ).map((command): Command => ({ ...command, uses: ["net"] })),
  permissionsCommand,
];

const GROUPS: Readonly<Record<string, string>> = {
  certs: "Manage the development PKI.",
  user: "Manage local accounts.",
  store: "Move mail between stores (SQLite, PostgreSQL).",
};

const encoder = new TextEncoder();

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** The process's working directory and standard streams. */
export function processIo(): CliIo {
  return {
    cwd: Deno.cwd(),
    out: (text) => write(Deno.stdout, text),
    err: (text) => write(Deno.stderr, text),
  };
}

/** Runs the command line `args` and returns the exit code. */
export async function main(args: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    return await dispatch(args, io);
  } catch (error) {
    return report(error, io);
  }
}

async function dispatch(args: readonly string[], io: CliIo): Promise<number> {
  const [first, second] = args;
  if (first === undefined) {
    io.err(topHelp());
    return 2;
  }
  if (first === "-h" || first === "--help" || first === "help") {
    if (second !== undefined && second in GROUPS) io.out(groupHelp(second));
    else if (second !== undefined) {
      const command = COMMANDS.find((c) => c.name === args.slice(1).join(" "));
      if (command === undefined) {
        throw new UsageError(`unknown command "${args.slice(1).join(" ")}"`);
      }
      io.out(commandHelp(command));
    } else io.out(topHelp());
    return 0;
  }
  let command: Command | undefined;
  let rest: readonly string[];
  if (first in GROUPS) {
    if (second === undefined) {
      throw new UsageError(`${first} needs a subcommand: ${subcommands(first).join(", ")}`, first);
    }
    if (second === "-h" || second === "--help") {
      io.out(groupHelp(first));
      return 0;
    }
    command = COMMANDS.find((c) => c.name === `${first} ${second}`);
    if (command === undefined) {
      const guess = suggest(second, subcommands(first));
      const hint = guess === undefined ? "" : ` (did you mean "${first} ${guess}"?)`;
      throw new UsageError(`unknown command "${first} ${second}"${hint}`, first);
    }
    rest = args.slice(2);
  } else {
    command = COMMANDS.find((c) => c.name === first);
    if (command === undefined) {
      const names = [...COMMANDS.map((c) => c.name.split(" ")[0]!), ...Object.keys(GROUPS)];
      const guess = first.startsWith("-") ? undefined : suggest(first, new Set(names));
      const hint = guess === undefined ? "" : ` (did you mean "${guess}"?)`;
      throw new UsageError(
        first.startsWith("-") ? `unknown option "${first}"` : `unknown command "${first}"${hint}`,
      );
    }
    rest = args.slice(1);
  }
  const options = { ...command.options, ...COMMON_OPTIONS };
  const parsed = parseArgs(rest, command.name, options, command.positionals);
  if (parsed.values.help === true) {
    io.out(commandHelp(command));
    return 0;
  }
  return await command.run({ ...parsed, io });
}

/** Prints an error the way its kind deserves and returns the exit code. */
function report(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    const help = error.command === undefined ? "--help" : `${error.command} --help`;
    io.err(`${PROGRAM}: ${error.message} (see "${PROGRAM} ${help}")\n`);
    return 2;
  }
  if (error instanceof ConfigError) {
    io.err(`${error.message}\n`);
    return 1;
  }
  if (error instanceof CliError || error instanceof MailStoreError) {
    io.err(`${PROGRAM}: ${error.message}\n`);
    return 1;
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  io.err(`${PROGRAM}: unexpected error: ${message.split("\n")[0]}\n`);
  return 1;
}

function subcommands(group: string): string[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${group} `)).map((c) =>
    c.name.slice(group.length + 1)
  );
}

function topHelp(): string {
  const rows: [string, string][] = [];
  for (const c of COMMANDS) {
    const group = c.name.split(" ")[0]!;
    if (group in GROUPS) {
      if (!rows.some(([name]) => name === group)) rows.push([group, GROUPS[group]!]);
    } else rows.push([c.name, c.summary]);
  }
  const width = Math.max(...rows.map(([n]) => n.length)) + 2;
  return [
    `Usage: ${PROGRAM} COMMAND [options]`,
    "",
    "Postern, a secure IMAP server. Commands:",
    ...rows.map(([n, s]) => `  ${n.padEnd(width)}${s}`),
    "",
    `Every command accepts --config FILE and --help. Run "${PROGRAM} COMMAND --help" for details.`,
    "",
  ].join("\n");
}

function groupHelp(group: string): string {
  const commands = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  const usage = commands.map((c) =>
    [c.name, ...c.positionals.map((p) => (p.optional ? `[${p.name}]` : p.name))].join(" ")
  );
  const width = Math.max(...usage.map((u) => u.length)) + 2;
  return [
    `Usage: ${PROGRAM} ${group} SUBCOMMAND [options]`,
    "",
    GROUPS[group]!,
    "",
    ...commands.map((c, i) => `  ${usage[i]!.padEnd(width)}${c.summary}`),
    "",
    `Run "${PROGRAM} ${group} SUBCOMMAND --help" for its options.`,
    "",
  ].join("\n");
}

function commandHelp(command: Command): string {
  return formatCommandHelp(
    PROGRAM,
    command.name,
    command.summary,
    { ...command.options, ...COMMON_OPTIONS },
    command.positionals,
    command.details,
  );
}

/**
 * The command `args` names, if any, for permission narrowing; help and errors get none.
 */
function commandOf(args: readonly string[]): Command | undefined {
  const [first, second] = args;
  if (first === undefined) return undefined;
  if (first in GROUPS) return COMMANDS.find((c) => c.name === `${first} ${second}`);
  return COMMANDS.find((c) => c.name === first);
}

/**
 * Gives up, for the rest of the process, the network and write access that the command in
 * `args` does not use (the `postern` task grants them to every subcommand). Path-specific
 * grants cannot be narrowed at run time, so reads stay as the task grants them; the `start`
 * task passes narrow flags instead.
 */
export async function narrowPermissions(args: readonly string[]): Promise<void> {
  const uses: readonly string[] = commandOf(args)?.uses ?? [];
  if (!uses.includes("net") && !uses.includes("store")) {
    await Deno.permissions.revoke({ name: "net" });
  }
  if (!uses.includes("write")) await Deno.permissions.revoke({ name: "write" });
}

if (import.meta.main) {
  await narrowPermissions(Deno.args);
  Deno.exit(await main(Deno.args));
}
