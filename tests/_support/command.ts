/** Runs a command to completion with a deadline, for tests that drive real tools. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the command had to be killed at the deadline. */
  readonly timedOut: boolean;
}

export interface RunOptions {
  readonly stdin?: string | Uint8Array;
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

/** Runs a command to completion, killing it with SIGKILL after `timeoutMs` (default 30 s). */
export async function run(
  cmd: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }, options.timeoutMs ?? 30_000);
  const writer = child.stdin.getWriter();
  const input = typeof options.stdin === "string" ? encoder.encode(options.stdin) : options.stdin;
  await (input ? writer.write(input) : Promise.resolve()).catch(() => {});
  await writer.close().catch(() => {});
  const result = await child.output();
  clearTimeout(timer);
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
    timedOut,
  };
}
