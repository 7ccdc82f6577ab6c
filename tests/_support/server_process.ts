/**
 * Postern as a subprocess (`server/main.ts serve --config FILE`), for the tests that kill it
 * with SIGKILL mid-load and start it again on the same data directory.
 */
import { join } from "node:path";
import { run, type RunResult } from "./command.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = join(ROOT, "server/main.ts");

export interface ServerProcess {
  readonly child: Deno.ChildProcess;
  /** Everything the server wrote to stderr so far, for failure messages. */
  readonly log: () => string;
  readonly exited: Promise<Deno.CommandStatus>;
}

export function spawnServer(configPath: string): ServerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", "--config", configPath],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const draining = (async () => {
    for await (const chunk of child.stderr) {
      if (text.length < 100_000) text += decoder.decode(chunk, { stream: true });
    }
  })();
  const exited = child.status.then(async (status) => {
    await draining.catch(() => {});
    return status;
  });
  return { child, log: () => text, exited };
}

export function killServer(server: ServerProcess, signal: Deno.Signal): void {
  try {
    server.child.kill(signal);
  } catch {
    // Already exited.
  }
}

/** Runs `postern ARGS…` as its own process, as an administrator would beside the server. */
export function runPostern(args: string[], stdin = ""): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", "--quiet", MAIN, ...args], { stdin, cwd: ROOT });
}

/** Runs `postern ARGS…` (e.g. `user add`) to completion; throws with its output on failure. */
export async function posternCommand(args: string[], stdin = ""): Promise<void> {
  const result = await runPostern(args, stdin);
  if (result.code !== 0) {
    throw new Error(`postern ${args.join(" ")} failed: ${result.stdout}${result.stderr}`);
  }
}
