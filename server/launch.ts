/**
 * `deno task start`: reads the configuration, derives the exact Deno permissions it needs
 * (server/cli/permissions.ts), prints them, and runs `postern serve` as a child process with
 * only those. The launcher itself may read files and start Deno, nothing else: it opens no
 * socket and writes no file. Signals (SIGHUP to reload, SIGTERM and SIGINT to stop) are passed
 * on to the server, and the launcher exits with the server's exit code.
 */
import { ConfigError } from "./config/mod.ts";
import { type OptionSpec, parseArgs, UsageError } from "./cli/args.ts";
import { permissionFlags, serveCommand, servePermissions } from "./cli/permissions.ts";
import { processIo, resolveConfig } from "./main.ts";

const OPTIONS = {
  config: {
    type: "string",
    short: "c",
    value: "FILE",
    description: "configuration file (default ./config.yaml, else built-in defaults)",
  },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const satisfies Record<string, OptionSpec>;

const FORWARDED: readonly Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT"]
  : ["SIGHUP", "SIGTERM", "SIGINT"];

async function launch(args: readonly string[]): Promise<number> {
  const io = processIo();
  const { values } = parseArgs(args, "start", OPTIONS, []);
  if (values.help === true) {
    io.out(
      "Usage: deno task start [--config FILE]\n\n" +
        "Runs `postern serve` with exactly the Deno permissions the configuration needs\n" +
        "(see `deno task postern permissions`).\n",
    );
    return 0;
  }
  const config = await resolveConfig(io, values, { checkFiles: false });
  const flags = permissionFlags(servePermissions(config));
  const shown = config.source ?? "built-in defaults (first run)";
  io.err(`postern: serving ${shown} with\n${flags.map((f) => `  ${f}\n`).join("")}`);
  const child = new Deno.Command(await denoExecutable(), {
    args: serveCommand(config, flags),
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const forward = FORWARDED.map((signal) => {
    const listener = () => {
      try {
        child.kill(signal);
      } catch {
        // The server has already exited.
      }
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  const status = await child.status;
  for (const [signal, listener] of forward) Deno.removeSignalListener(signal, listener);
  return status.code;
}

/**
 * The running Deno when the launcher may start it (`--allow-run` with its path), else `deno`
 * from PATH (the start task grants `--allow-run=deno`, which names the link on PATH).
 */
async function denoExecutable(): Promise<string> {
  const self = Deno.execPath();
  const status = await Deno.permissions.query({ name: "run", command: self });
  return status.state === "granted" ? self : "deno";
}

if (import.meta.main) {
  try {
    Deno.exit(await launch(Deno.args));
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`postern: ${error.message} (see "deno task start --help")`);
      Deno.exit(2);
    }
    const message = error instanceof ConfigError || !(error instanceof Error)
      ? String(error instanceof Error ? error.message : error)
      : `postern: ${error.message.split("\n")[0]}`;
    console.error(message);
    Deno.exit(1);
  }
}
