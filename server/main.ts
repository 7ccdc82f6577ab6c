/**
 * The `postern` command line: the single entry point for running and administering the server
 * (`deno task postern …`). Mistakes on the command line print one line on stderr and exit 2;
 * failures while running print one line (or the list of configuration errors) and exit 1.
 * Nothing ever prints a stack trace.
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import {
  type Config,
  ConfigError,
  type ConfigOptions,
  DEFAULT_CONFIG_FILE,
  defaultConfig,
  loadConfig,
} from "./config.ts";
import { getLogger, setupLogging } from "./log.ts";
import {
  CliError,
  formatCommandHelp,
  type OptionSpec,
  type OptionValues,
  parseArgs,
  type PositionalSpec,
  UsageError,
} from "./cli/args.ts";
import { describeCertificateFile, listCertificates } from "./cli/certs.ts";
import {
  createCa,
  type DevCa,
  ensureDevPki,
  issueClientCertificate,
  issueServerCertificate,
} from "./cli/dev_pki.ts";
import { importMail } from "./cli/import_mail.ts";
import { readPassword } from "./cli/password_prompt.ts";
import { suggest } from "./config/suggest.ts";
import { hashPassword } from "../mailstore/password.ts";
import { importUsers, readImportFile } from "./cli/user_import.ts";
import { MailStoreError } from "../mailstore/mail_store.ts";
import type { MailStore } from "../mailstore/mail_store.ts";
import { prepareDataDir } from "./data_dir.ts";
import { openConfiguredStore } from "./store.ts";
import { copyStore } from "../mailstore/transfer.ts";
import type { ServeHandle } from "./serve.ts";
import { serveOnCores } from "./workers/mod.ts";
import { startStallProbeFromEnv } from "./stall_probe.ts";
import { describeTlsSuites } from "./tls_config.ts";
import { connectInstructions, ensureDemoAccount } from "./cli/first_run.ts";
import { adminCommands } from "./cli/admin.ts";
import { permissionFlags, serveCommand, servePermissions } from "./cli/permissions.ts";

export { ensureDevPki } from "./cli/dev_pki.ts";

const PROGRAM = "postern";

/** Where a command reads and writes; the process's own streams unless a test injects others. */
export interface CliIo {
  /** Directory relative paths and ./config.yaml are taken from. */
  readonly cwd: string;
  out(text: string): void;
  err(text: string): void;
  /** Source of passwords when it is not a terminal; default: the process's stdin. */
  readonly stdin?: ReadableStream<Uint8Array>;
}

interface CommandInput {
  readonly values: OptionValues;
  readonly positionals: readonly string[];
  readonly lists: Readonly<Record<string, readonly string[]>>;
  readonly io: CliIo;
}

interface Command {
  /** Full name, e.g. `certs issue-client`. */
  readonly name: string;
  readonly summary: string;
  readonly details?: string;
  readonly positionals: readonly PositionalSpec[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  /**
   * What the command needs beyond reading files and a few environment variables: `net` to
   * listen or reach LDAP, `write` to change files, `store` to open the mail store (which keeps
   * the network too, since the store may be a PostgreSQL server). The rest is revoked before
   * it runs.
   */
  readonly uses: readonly ("net" | "write" | "store")[];
  run(input: CommandInput): Promise<number>;
}

const COMMON_OPTIONS = {
  config: {
    type: "string",
    short: "c",
    value: "FILE",
    description: `configuration file (default ./${DEFAULT_CONFIG_FILE}, else built-in defaults)`,
  },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const satisfies Record<string, OptionSpec>;

const FORCE = {
  type: "boolean",
  description: "replace existing files",
} as const satisfies OptionSpec;
const DIR = {
  type: "string",
  value: "DIR",
  description: "certificate directory (default: the directory of tls.certificate)",
} as const satisfies OptionSpec;
const DAYS = {
  type: "string",
  value: "N",
  description: "validity in days",
} as const satisfies OptionSpec;
const KEY_TYPE = {
  type: "string",
  value: "TYPE",
  description: "key type: P-256 (default), P-384, ed25519, rsa2048, rsa3072 or rsa4096",
} as const satisfies OptionSpec;

const KEY_TYPES = ["P-256", "P-384", "ed25519", "rsa2048", "rsa3072", "rsa4096"] as const;

const COMMANDS: readonly Command[] = [
  {
    name: "serve",
    uses: ["net", "write"],
    summary: "Run the IMAP server.",
    details: "Without a configuration file, a development CA and server certificate are created\n" +
      "in ./certs on the first run.",
    positionals: [],
    options: {},
    run: runServe,
  },
  {
    name: "check-config",
    uses: [],
    summary: "Validate the configuration file and the files it names; print config OK.",
    positionals: [],
    options: {},
    async run({ values, io }) {
      const config = await resolveConfig(io, values, { checkFiles: true });
      const key = await Deno.readTextFile(config.tls.privateKey).catch(() => null);
      const suites = describeTlsSuites(config.tls.minVersion, key).map((l) => `${l}\n`).join("");
      if (config.source !== null) {
        io.out(`config OK\n${suites}`);
        return 0;
      }
      const pki = [config.tls.certificate, config.tls.privateKey, ...config.tls.clientCa];
      const missing = (await Promise.all(pki.map(exists))).some((found) => !found);
      const note = missing ? "; serve creates the development certificates" : "";
      io.out(`config OK (no ${DEFAULT_CONFIG_FILE}: built-in defaults${note})\n${suites}`);
      return 0;
    },
  },
  {
    name: "certs init-ca",
    uses: ["write"],
    summary: "Create a development CA: ca.pem and ca.key (mode 0600).",
    positionals: [],
    options: { dir: DIR, days: DAYS, "key-type": KEY_TYPE, force: FORCE },
    async run({ values, io }) {
      const dir = await certsDir(io, values);
      const paths = await createCa(dir, issueOptions(values));
      io.out(`wrote ${paths.caCertificate} and ${paths.caKey}\n`);
      return 0;
    },
  },
  {
    name: "certs issue-server",
    uses: ["write"],
    summary: "Issue server.pem (leaf then CA) and server.key from the CA.",
    positionals: [],
    options: {
      dir: DIR,
      dns: {
        type: "string",
        value: "NAMES",
        description: "comma-separated DNS names (default localhost)",
      },
      ip: {
        type: "string",
        value: "ADDRESSES",
        description: "comma-separated IP addresses (default 127.0.0.1,::1)",
      },
      days: DAYS,
      "key-type": KEY_TYPE,
      force: FORCE,
    },
    async run({ values, io }) {
      const dir = await certsDir(io, values);
      const dnsNames = list(values.dns);
      const ipAddresses = list(values.ip);
      const paths = await issueServerCertificate(dir, {
        ...issueOptions(values),
        ...(dnsNames === undefined ? {} : { dnsNames }),
        ...(ipAddresses === undefined ? {} : { ipAddresses }),
      });
      io.out(`wrote ${paths.serverCertificate} and ${paths.serverKey}\n`);
      return 0;
    },
  },
  {
    name: "certs issue-client",
    uses: ["write"],
    summary: "Issue NAME.pem and NAME.key: email SAN NAME@localhost, clientAuth EKU.",
    positionals: [{ name: "NAME" }],
    options: {
      dir: DIR,
      email: {
        type: "string",
        value: "ADDRESS",
        description: "email SAN (default NAME@localhost)",
      },
      p12: {
        type: "boolean",
        description: "also write NAME.p12 (PKCS#12) for mail clients; asks for its password",
      },
      days: DAYS,
      "key-type": KEY_TYPE,
      force: FORCE,
    },
    async run({ values, positionals, io }) {
      const name = positionals[0]!;
      const dir = await certsDir(io, values);
      const email = typeof values.email === "string" ? { email: values.email } : {};
      const p12Password = values.p12 === true
        ? { p12Password: await readPassword(`Export password for ${name}.p12: `, true, io.stdin) }
        : {};
      const issued = await issueClientCertificate(dir, name, {
        ...issueOptions(values),
        ...email,
        ...p12Password,
      });
      const p12 = issued.p12 === null ? "" : ` and ${issued.p12}`;
      io.out(`wrote ${issued.certificate}, ${issued.key}${p12}\n`);
      return 0;
    },
  },
  {
    name: "certs list",
    uses: [],
    summary: "List the certificates in the certificate directory.",
    positionals: [],
    options: { dir: DIR },
    async run({ values, io }) {
      io.out(await listCertificates(await certsDir(io, values)));
      return 0;
    },
  },
  {
    name: "certs show",
    uses: [],
    summary: "Show the certificates in a PEM or DER file.",
    positionals: [{ name: "FILE" }],
    options: {},
    async run({ positionals, io }) {
      io.out(await describeCertificateFile(resolve(io.cwd, positionals[0]!)));
      return 0;
    },
  },
  {
    name: "user add",
    uses: ["write", "store"],
    summary: "Add a local account. The password is read from stdin when it is not a terminal.",
    positionals: [{ name: "NAME" }],
    options: {
      "no-password": {
        type: "boolean",
        description: "no password: the user logs in with a certificate only",
      },
      address: {
        type: "string",
        value: "ADDRESS",
        description: "a mail address delivered to this user over LMTP (repeatable)",
      },
    },
    async run({ values, positionals, lists, io }) {
      const name = positionals[0]!;
      const config = await resolveConfig(io, values, { checkFiles: false });
      const addresses = lists.address ?? [];
      await withStore(io, values, async (store) => {
        if ((await store.getAccount(name)) !== null) {
          throw new CliError(`user "${name}" already exists`);
        }
        for (const address of addresses) {
          const owner = await store.findAccountByAddress(address);
          if (owner !== null) {
            throw new CliError(`address "${address}" already belongs to user "${owner.name}"`);
          }
          if (!/^[^@\s<>]+@[^@\s<>]+$/.test(address)) {
            throw new CliError(`"${address}" is not a mail address (local@domain)`);
          }
        }
        const hash = values["no-password"] === true ? null : hashPassword(
          await readPassword(`Password for ${name}: `, true, io.stdin),
          config.auth.scryptCost,
        );
        const account = await store.createAccount(name, hash);
        for (const address of addresses) await store.addAddress(account.id, address);
      }, config);
      io.out(`user "${name}" added\n`);
      return 0;
    },
  },
  {
    name: "user address",
    uses: ["write", "store"],
    summary: "Add or remove a local account's mail addresses (LMTP recipients); list them.",
    positionals: [{ name: "NAME" }],
    options: {
      add: { type: "string", value: "ADDRESS", description: "address to add (repeatable)" },
      remove: { type: "string", value: "ADDRESS", description: "address to remove (repeatable)" },
    },
    async run({ values, positionals, lists, io }) {
      const name = positionals[0]!;
      const addresses = await withStore(io, values, async (store) => {
        const account = await store.getAccount(name);
        if (account === null) throw new CliError(`no user "${name}"`);
        for (const address of lists.add ?? []) {
          if (!/^[^@\s<>]+@[^@\s<>]+$/.test(address)) {
            throw new CliError(`"${address}" is not a mail address (local@domain)`);
          }
          const owner = await store.findAccountByAddress(address);
          if (owner !== null && owner.id !== account.id) {
            throw new CliError(`address "${address}" already belongs to user "${owner.name}"`);
          }
          await store.addAddress(account.id, address);
        }
        const own = new Set(await store.listAddresses(account.id));
        for (const address of lists.remove ?? []) {
          if (!own.has(address.trim().toLowerCase())) {
            throw new CliError(`user "${name}" has no address "${address}"`);
          }
          await store.removeAddress(address);
        }
        return await store.listAddresses(account.id);
      });
      for (const address of addresses) io.out(`${address}\n`);
      return 0;
    },
  },
  {
    name: "user passwd",
    uses: ["write", "store"],
    summary: "Set a local account's password (read from stdin when it is not a terminal).",
    positionals: [{ name: "NAME" }],
    options: {},
    async run({ values, positionals, io }) {
      const name = positionals[0]!;
      const config = await resolveConfig(io, values, { checkFiles: false });
      // A running server notices the new hash at the user's next login: its cache entries are
      // stamped with the hash they were checked against.
      await withStore(io, values, async (store) => {
        await requireAccount(store, name);
        const hash = hashPassword(
          await readPassword(`New password for ${name}: `, true, io.stdin),
          config.auth.scryptCost,
        );
        await store.setPasswordHash(name, hash);
      }, config);
      io.out(`password of "${name}" changed\n`);
      return 0;
    },
  },
  {
    name: "user remove",
    uses: ["write", "store"],
    summary: "Remove a local account and all its mail.",
    positionals: [{ name: "NAME" }],
    options: {},
    async run({ values, positionals, io }) {
      const name = positionals[0]!;
      await withStore(io, values, async (store) => {
        await requireAccount(store, name);
        await store.deleteAccount(name);
      });
      io.out(`user "${name}" removed\n`);
      return 0;
    },
  },
  {
    name: "user import",
    uses: ["write", "store"],
    summary: "Add or update local accounts from a Dovecot passwd-file.",
    details: "Each line is user:{SCHEME}hash[:uid:gid:gecos:home:shell:extra], or user:hash.\n" +
      "Schemes kept as they are: {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {ARGON2ID},\n" +
      "and bare $6$, $5$, $2y$/$2b$/$2a$ and $argon2id$ hashes; each is replaced by scrypt at\n" +
      "the user's first successful login. {PLAIN} passwords are hashed with scrypt now.\n" +
      "Existing accounts get the new password hash; their mail is kept.",
    positionals: [{ name: "FILE" }],
    options: {},
    async run({ values, positionals, io }) {
      const config = await resolveConfig(io, values, { checkFiles: false });
      const path = resolve(io.cwd, positionals[0]!);
      const text = await readImportFile(path);
      const result = await withStore(
        io,
        values,
        (store) => importUsers(store, text, config.auth.scryptCost),
        config,
      );
      for (const problem of result.problems) {
        io.err(`${positionals[0]}:${problem.line}: ${problem.message}\n`);
      }
      io.out(
        `${result.added} added, ${result.updated} updated, ${result.problems.length} skipped\n`,
      );
      return result.problems.length === 0 ? 0 : 1;
    },
  },
  {
    name: "store copy",
    uses: ["net", "write"],
    summary: "Copy every account from one configuration's store to another's, exactly.",
    details: "UIDVALIDITY, UIDs, MODSEQs, flags, dates, subscriptions, addresses and expunge\n" +
      "records are kept, so clients synchronised before the move do not resync. Works both\n" +
      "ways between SQLite and PostgreSQL. The destination must hold no account; stop the\n" +
      "servers on the source first.",
    positionals: [],
    options: {
      from: { type: "string", value: "CONFIG", description: "configuration of the source" },
      to: { type: "string", value: "CONFIG", description: "configuration of the destination" },
    },
    async run({ values, io }) {
      if (typeof values.from !== "string" || typeof values.to !== "string") {
        throw new UsageError("store copy needs --from CONFIG and --to CONFIG", "store copy");
      }
      const load = (path: string) =>
        loadConfig(resolve(io.cwd, path), { checkFiles: false, displayName: path });
      const [fromConfig, toConfig] = [await load(values.from), await load(values.to)];
      const from = await openConfiguredStore(fromConfig);
      try {
        const to = await openConfiguredStore(toConfig);
        try {
          const summary = await copyStore(from, to, (line) => io.err(`${line}\n`));
          io.out(
            `copied ${summary.accounts} accounts, ${summary.mailboxes} mailboxes, ` +
              `${summary.messages} messages (${summary.bytes} bytes)\n`,
          );
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
      return 0;
    },
  },
  {
    name: "user list",
    uses: ["write", "store"],
    summary: "List the local accounts.",
    positionals: [],
    options: {},
    async run({ values, io }) {
      const rows = await withStore(io, values, async (store) => {
        const out: [string, string, string[]][] = [];
        for (const account of await store.listAccounts()) {
          const kind = account.passwordHash === null ? "certificate only" : "password";
          out.push([account.name, kind, await store.listAddresses(account.id)]);
        }
        return out;
      });
      for (const [name, kind, addresses] of rows) {
        io.out(`${name}\t${kind}${addresses.length === 0 ? "" : `\t${addresses.join(",")}`}\n`);
      }
      return 0;
    },
  },
  {
    name: "import",
    uses: ["write", "store"],
    summary: "Import an mbox file or a Maildir folder into a user's mailbox.",
    details:
      'An mbox file starts with a "From " line; a Maildir is a folder with cur/ and new/.\n' +
      "Flags come from Status/X-Status headers (mbox) or the :2,FRS suffix (Maildir).",
    positionals: [{ name: "NAME" }, { name: "FILE" }],
    options: {
      mailbox: { type: "string", value: "MAILBOX", description: "target mailbox (default INBOX)" },
    },
    async run({ values, positionals, io }) {
      const config = await resolveConfig(io, values, { checkFiles: false });
      const result = await withStore(io, values, (store) =>
        importMail(store, {
          user: positionals[0]!,
          source: resolve(io.cwd, positionals[1]!),
          mailbox: typeof values.mailbox === "string" ? values.mailbox : "INBOX",
          maxMessageSize: config.limits.maxMessageSize,
        }), config);
      const skipped = result.oversized === 0
        ? ""
        : ` (${result.oversized} skipped: larger than limits.max_message_size)`;
      io.out(
        `imported ${result.imported} messages into ${positionals[0]}/${result.mailbox}${skipped}\n`,
      );
      return 0;
    },
  },
  // who, kick, reload, stats: through the running server's admin socket.
  // They keep the network permission: the admin socket is a Unix socket.
  ...adminCommands(async (io, values) =>
    (await resolveConfig(io, values, { checkFiles: false })).admin.socket
  ).map((command): Command => ({ ...command, uses: ["net"] })),
  {
    name: "permissions",
    uses: [],
    summary: "Print the Deno permission flags that serve needs for the configuration.",
    details: "The same flags `deno task start` runs the server with: reads of the files the\n" +
      "configuration names, writes to the data folder only, its listeners and LDAP server.\n" +
      "With --command, prints a whole `deno run` command line, e.g. for a systemd unit.",
    positionals: [],
    options: {
      command: { type: "boolean", description: "print the whole deno run command line" },
    },
    async run({ values, io }) {
      const config = await resolveConfig(io, values, { checkFiles: false });
      const flags = permissionFlags(servePermissions(config));
      if (values.command === true) {
        io.out(`${[Deno.execPath(), ...serveCommand(config, flags)].join(" ")}\n`);
      } else io.out(flags.map((flag) => `${flag}\n`).join(""));
      return 0;
    },
  },
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
 * The configuration for a command: `--config FILE` when given, else ./config.yaml when it
 * exists, else the built-in defaults.
 */
export async function resolveConfig(
  io: CliIo,
  values: OptionValues,
  options: ConfigOptions,
): Promise<Config> {
  if (typeof values.config === "string") {
    const path = values.config;
    return await loadConfig(isAbsolute(path) ? path : join(io.cwd, path), {
      ...options,
      displayName: path,
    });
  }
  try {
    await Deno.stat(join(io.cwd, DEFAULT_CONFIG_FILE));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return defaultConfig(io.cwd);
    throw error;
  }
  return await loadConfig(join(io.cwd, DEFAULT_CONFIG_FILE), {
    ...options,
    displayName: DEFAULT_CONFIG_FILE,
  });
}

async function certsDir(io: CliIo, values: OptionValues): Promise<string> {
  if (typeof values.dir === "string") return resolve(io.cwd, values.dir);
  const config = await resolveConfig(io, values, { checkFiles: false });
  return dirname(config.tls.certificate);
}

function issueOptions(values: OptionValues): {
  force: boolean;
  days?: number;
  keyType?: (typeof KEY_TYPES)[number];
} {
  const result: { force: boolean; days?: number; keyType?: (typeof KEY_TYPES)[number] } = {
    force: values.force === true,
  };
  if (typeof values.days === "string") {
    const days = Number(values.days);
    if (!/^\d+$/.test(values.days) || days < 1 || days > 36500) {
      throw new UsageError(`--days must be a whole number from 1 to 36500, got "${values.days}"`);
    }
    result.days = days;
  }
  if (typeof values["key-type"] === "string") {
    const keyType = KEY_TYPES.find((k) =>
      k.toLowerCase() === (values["key-type"] as string).toLowerCase()
    );
    if (keyType === undefined) {
      throw new UsageError(`unknown key type "${values["key-type"]}" (${KEY_TYPES.join(", ")})`);
    }
    result.keyType = keyType;
  }
  return result;
}

function list(value: string | boolean | undefined): string[] | undefined {
  if (typeof value !== "string") return undefined;
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** Opens the configured store (default `<data_dir>/postern.db`), runs `body`, and closes it. */
async function withStore<T>(
  io: CliIo,
  values: OptionValues,
  body: (store: MailStore) => Promise<T>,
  config?: Config,
): Promise<T> {
  const resolved = config ?? await resolveConfig(io, values, { checkFiles: false });
  const store = await openConfiguredStore(resolved);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function requireAccount(store: MailStore, name: string): Promise<void> {
  if ((await store.getAccount(name)) === null) throw new CliError(`no user "${name}"`);
}

async function runServe({ values, io }: CommandInput): Promise<number> {
  let config = await resolveConfig(io, values, { checkFiles: false });
  let newCa: DevCa | undefined;
  if (config.source === null) {
    const pki = await ensureDevPki(dirname(config.tls.certificate));
    if (pki.createdCa) io.err(`created a development CA in ${pki.caCertificate}\n`);
    if (pki.createdServer) io.err(`created a server certificate in ${pki.serverCertificate}\n`);
    newCa = pki.ca;
  } else {
    config = await resolveConfig(io, values, { checkFiles: true });
  }
  setupLogging(config.log);
  startStallProbeFromEnv();
  await prepareDataDir(config.dataDir);
  const demo = config.source === null
    ? await ensureDemoAccount(config, dirname(config.tls.certificate), newCa)
    : null;
  const log = getLogger("cli");
  // Signal handlers go in before the listeners open, so no early SIGTERM kills the process.
  let handle: ServeHandle | null = null;
  let stopRequested = false;
  const stop = () => {
    if (handle === null) {
      stopRequested = true;
      return;
    }
    log.info("Shutting down");
    handle.shutdown().catch((error) => log.error("Shutdown failed: {error}", { error }));
  };
  // SIGHUP re-reads the configuration file and the certificates it names (e.g. after renewal).
  const reload = () => {
    if (handle === null) return;
    const running = handle;
    resolveConfig(io, values, { checkFiles: true })
      .then((next) => running.reload(next))
      .then(() => log.info("Configuration reloaded"))
      .catch((error) => {
        const message = error instanceof Error ? error.message : String(error);
        log.error("Reload failed, keeping the running configuration: {message}", { message });
      });
  };
  const signals: [Deno.Signal, () => void][] = [["SIGINT", stop], ["SIGTERM", stop]];
  if (Deno.build.os !== "windows") signals.push(["SIGHUP", reload]);
  for (const [signal, listener] of signals) Deno.addSignalListener(signal, listener);
  try {
    const running = handle = await serveOnCores(config, {
      rereadConfig: () => resolveConfig(io, values, { checkFiles: true }),
    });
    if (stopRequested) stop();
    if (demo !== null) {
      const port = (tls: "implicit" | "starttls") =>
        running.addresses.find((_, i) => config.listen[i]?.tls === tls)?.port ?? null;
      io.err(
        connectInstructions(
          demo,
          config.tls.clientCa[0] ?? "",
          port("implicit") ?? 0,
          port("starttls"),
        ),
      );
    }
    await running.finished;
  } finally {
    for (const [signal, listener] of signals) Deno.removeSignalListener(signal, listener);
  }
  return 0;
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
