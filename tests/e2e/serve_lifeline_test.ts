/**
 * A server started by the tests' helper (tests/_support/postern.ts) stops when the process that
 * started it is killed: it reads the end of its standard input (server/cli/serve.ts,
 * `POSTERN_STOP_ON_STDIN_EOF`), where it used to run on unseen.
 */
import assert from "node:assert/strict";

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

Deno.test({
  name: "the helper's server stops when the process that started it is killed",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const driver = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./_lifeline_driver.ts", import.meta.url).pathname],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = driver.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const { pid, dir } = JSON.parse(text.split("\n")[0]!) as { pid: number; dir: string };
    try {
      assert.ok(alive(pid), "the server runs");
      driver.kill("SIGKILL");
      await driver.status;
      for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(!alive(pid), "the server stopped once its parent was gone");
    } finally {
      await reader.cancel().catch(() => {});
      if (alive(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
