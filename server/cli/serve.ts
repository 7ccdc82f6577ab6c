/** `postern serve`, `check-config` and `permissions`: running the server and preparing its start. */
import { dirname, join } from "node:path";
import {
  type Config,
  DEFAULT_CONFIG_FILE,
  defaultConfig,
  loadConfig,
  parseConfig,
  type TlsMode,
} from "../config/mod.ts";
import { getLogger, setupLogging } from "../log.ts";
import { type DevCa, ensureDevPki } from "./dev_pki.ts";
import { prepareDataDir } from "../serve/data_dir.ts";
import type { ServeHandle } from "../serve/mod.ts";
import { serveOnCores } from "../workers/mod.ts";
import { startStallProbeFromEnv } from "../serve/stall_probe.ts";
import { describeTlsSuites } from "../connection/tls_config.ts";
import { readTlsMaterial, type TlsConfig, type TlsMaterial } from "../config/tls.ts";
import { connectInstructions, ensureDemoAccount } from "./first_run.ts";
import { permissionFlags, serveCommand, servePermissions } from "./permissions.ts";
import { type Command, type CommandInput, configFile, exists, resolveConfig } from "./command.ts";

export const serveCommands: readonly Command[] = [
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
      const pki = [config.tls.certificate, config.tls.privateKey, ...config.tls.clientCa];
      const missing = config.source === null &&
        (await Promise.all(pki.map(exists))).some((found) => !found);
      // The key the file's check loaded; the built-in defaults are read here when present.
      const material = config.tls.material ?? (missing ? null : materialOrNull(config.tls));
      const key = material?.certificates[0]?.privateKey ?? null;
      const suites = describeTlsSuites(config.tls.minVersion, key).map((l) => `${l}\n`).join("");
      if (config.source !== null) {
        io.out(`config OK\n${suites}`);
        return 0;
      }
      const note = missing ? "; serve creates the development certificates" : "";
      io.out(`config OK (no ${DEFAULT_CONFIG_FILE}: built-in defaults${note})\n${suites}`);
      return 0;
    },
  },
];

export const permissionsCommand: Command = {
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
};

async function runServe({ values, io }: CommandInput): Promise<number> {
  // The file is parsed once, with its certificates read and checked; without a file the
  // development PKI is made first, then the defaults are read with it.
  let config: Config;
  let newCa: DevCa | undefined;
  const file = await configFile(io, values);
  if (file === null) {
    const defaults = defaultConfig(io.cwd);
    const pki = await ensureDevPki(dirname(defaults.tls.certificate));
    if (pki.createdCa) io.err(`created a development CA in ${pki.caCertificate}\n`);
    if (pki.createdServer) io.err(`created a server certificate in ${pki.serverCertificate}\n`);
    newCa = pki.ca;
    config = { ...parseConfig("", join(io.cwd, DEFAULT_CONFIG_FILE)), source: null };
  } else {
    config = await loadConfig(file.path, { checkFiles: true, displayName: file.shown });
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
  stopWhenStdinEnds(stop);
  try {
    const running = handle = await serveOnCores(config, {
      rereadConfig: () => resolveConfig(io, values, { checkFiles: true }),
    });
    if (stopRequested) stop();
    if (demo !== null) {
      const port = (tls: TlsMode) =>
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
 * With `POSTERN_STOP_ON_STDIN_EOF=1` (the servers the tests and benches start,
 * tests/_support/postern.ts) the server shuts down, as on SIGTERM, once its standard input ends:
 * the process that started it holds the other end of the pipe, and when a signal kills that
 * process the pipe closes, where its server would otherwise run on unseen (a dozen such idle
 * servers once took a few per cent of a bench machine's CPU).
 */
function stopWhenStdinEnds(stop: () => void): void {
  let wanted: string | undefined;
  try {
    wanted = Deno.env.get("POSTERN_STOP_ON_STDIN_EOF");
  } catch {
    return; // not permitted: the launcher's servers never ask for it
  }
  if (wanted !== "1") return;
  void (async () => {
    const sink = new Uint8Array(256);
    try {
      while (await Deno.stdin.read(sink) !== null) { /* whatever the parent writes is ignored */ }
    } catch { /* stdin unreadable: treat as ended */ }
    stop();
  })();
}

function materialOrNull(tls: TlsConfig): TlsMaterial | null {
  try {
    return readTlsMaterial(tls);
  } catch {
    return null;
  }
}
