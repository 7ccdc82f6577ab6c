/** Helpers that drive the `openssl` CLI for interop tests. */

/** Runs openssl with `args` in `cwd`; throws with stderr on failure. */
export function openssl(args: string[], cwd: string, stdin?: string): string {
  const cmd = new Deno.Command("openssl", {
    args,
    cwd,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  if (stdin === undefined) {
    const out = cmd.outputSync();
    if (!out.success) {
      throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    return new TextDecoder().decode(out.stdout);
  }
  const child = cmd.spawn();
  const w = child.stdin.getWriter();
  w.write(new TextEncoder().encode(stdin));
  w.close();
  throw new Error("stdin mode is asynchronous; use opensslAsync");
}

/** Like `openssl` but returns success and combined output instead of throwing. */
export function opensslTry(args: string[], cwd: string): { ok: boolean; output: string } {
  const out = new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .outputSync();
  const d = new TextDecoder();
  return { ok: out.success, output: d.decode(out.stdout) + d.decode(out.stderr) };
}

/** Reads a PEM file's single block as DER via openssl. */
export function readFileText(dir: string, name: string): string {
  return Deno.readTextFileSync(`${dir}/${name}`);
}
