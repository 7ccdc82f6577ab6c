/**
 * Debian's HAProxy as a child process in TCP mode, on free loopback ports with a throwaway
 * config, relaying to given backends with a PROXY protocol v2 header (`send-proxy-v2`).
 */
import { join } from "node:path";
import { freePort } from "./ports.ts";

/** Where Debian installs HAProxy (/usr/sbin, off the PATH of non-root shells). */
export function haproxyPath(): string | null {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"]) {
    if (dir === "") continue;
    try {
      if (Deno.statSync(join(dir, "haproxy")).isFile) return join(dir, "haproxy");
    } catch {
      // Not here.
    }
  }
  return null;
}

export interface HaproxyRoute {
  /** The backend's loopback port, or several (balanced round-robin). */
  readonly backendPort: number | readonly number[];
  /** The address HAProxy connects to the backend from (`source`); default 127.0.0.1. */
  readonly source?: string;
  /** Extra words on the `server` line, such as `check inter 200ms check-send-proxy`. */
  readonly serverOptions?: string;
  /** Extra lines of the backend section, such as `option tcp-check`. */
  readonly backendLines?: readonly string[];
}

export interface RunningHaproxy {
  /** The frontend port of each route, in order. */
  readonly ports: readonly number[];
  /** What HAProxy wrote to stderr so far (its warnings and alerts). */
  output(): string;
  stop(): Promise<void>;
}

/** Starts HAProxy in the foreground (`-db`) and waits until every frontend accepts. */
export async function startHaproxy(routes: readonly HaproxyRoute[]): Promise<RunningHaproxy> {
  const binary = haproxyPath();
  if (binary === null) throw new Error("haproxy is not installed (Debian package haproxy)");
  const dir = await Deno.makeTempDir({ prefix: "postern-haproxy-" });
  const ports = routes.map(() => freePort());
  const config = [
    "global",
    "  maxconn 256",
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 60s",
    "  timeout server 60s",
    ...routes.flatMap((route, i) => [
      `frontend f${i}`,
      `  bind 127.0.0.1:${ports[i]}`,
      `  default_backend b${i}`,
      `backend b${i}`,
      ...(route.backendLines ?? []).map((line) => `  ${line}`),
      ...[route.backendPort].flat().map((port, j) =>
        `  server s${i}_${j} 127.0.0.1:${port} send-proxy-v2 source ${
          route.source ?? "127.0.0.1"
        } ${route.serverOptions ?? ""}`
      ),
    ]),
    "",
  ].join("\n");
  const configPath = join(dir, "haproxy.cfg");
  await Deno.writeTextFile(configPath, config);
  const child = new Deno.Command(binary, {
    args: ["-db", "-f", configPath],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const keep = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (t) => void (output = (output + t).slice(-8192)) }),
    ).catch(() => {});
  const draining = Promise.all([keep(child.stdout), keep(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    await status;
    await draining;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 10_000;
  for (const port of ports) {
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch {
        if (exited || Date.now() > deadline) {
          await stop();
          throw new Error(`haproxy did not start: ${output}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  return { ports, output: () => output, stop };
}
