/**
 * What every `postern` command shares: its shape in the command table, the streams it writes
 * to, and how it finds the configuration and the mail store.
 */
import { isAbsolute, join } from "node:path";
import {
  type Config,
  type ConfigOptions,
  DEFAULT_CONFIG_FILE,
  defaultConfig,
  loadConfig,
} from "../config/mod.ts";
import type { MailStore } from "../../mailstore/mail_store.ts";
import { openConfiguredStore } from "../serve/store.ts";
import { CliError, type OptionSpec, type OptionValues, type PositionalSpec } from "./args.ts";

/** Where a command reads and writes; the process's own streams unless a test injects others. */
export interface CliIo {
  /** Directory relative paths and ./config.yaml are taken from. */
  readonly cwd: string;
  out(text: string): void;
  err(text: string): void;
  /** Source of passwords when it is not a terminal; default: the process's stdin. */
  readonly stdin?: ReadableStream<Uint8Array>;
}

export interface CommandInput {
  readonly values: OptionValues;
  readonly positionals: readonly string[];
  readonly lists: Readonly<Record<string, readonly string[]>>;
  readonly io: CliIo;
}

/** One entry of the command table. */
export interface Command {
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

/** Options every command takes. */
export const COMMON_OPTIONS = {
  config: {
    type: "string",
    short: "c",
    value: "FILE",
    description: `configuration file (default ./${DEFAULT_CONFIG_FILE}, else built-in defaults)`,
  },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const satisfies Record<string, OptionSpec>;

/**
 * The configuration for a command: `--config FILE` when given, else ./config.yaml when it
 * exists, else the built-in defaults.
 */
export async function resolveConfig(
  io: CliIo,
  values: OptionValues,
  options: ConfigOptions,
): Promise<Config> {
  const file = await configFile(io, values);
  if (file === null) return defaultConfig(io.cwd);
  return await loadConfig(file.path, { ...options, displayName: file.shown });
}

/**
 * The configuration file a command reads: `--config FILE` when given, else ./config.yaml when
 * it exists, else null (the built-in defaults).
 */
export async function configFile(
  io: CliIo,
  values: OptionValues,
): Promise<{ path: string; shown: string } | null> {
  if (typeof values.config === "string") {
    const path = values.config;
    return { path: isAbsolute(path) ? path : join(io.cwd, path), shown: path };
  }
  try {
    await Deno.stat(join(io.cwd, DEFAULT_CONFIG_FILE));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  return { path: join(io.cwd, DEFAULT_CONFIG_FILE), shown: DEFAULT_CONFIG_FILE };
}

/** Opens the configured store (default `<data_dir>/postern.db`), runs `body`, and closes it. */
export async function withStore<T>(
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

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function requireAccount(store: MailStore, name: string): Promise<void> {
  if ((await store.getAccount(name)) === null) throw new CliError(`no user "${name}"`);
}
