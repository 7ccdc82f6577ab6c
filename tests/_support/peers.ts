/**
 * Drives real TLS clients (OpenSSL, GnuTLS, Python, Deno/rustls) against a server on loopback:
 * each sends a payload to the echo service, reads it back, and ends with a `QUIT` line, after
 * which the server closes with close_notify.
 */

export interface PeerRun {
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: string;
}

/** A payload of `lines` lines of 1 KiB (1 MiB for 1024), then the QUIT line. */
export function echoPayload(lines: number): Uint8Array {
  const out = new Uint8Array(lines * 1024 + 5);
  for (let i = 0; i < lines; i++) {
    const line = `${i.toString().padStart(8, "0")}:`;
    for (let j = 0; j < 1023; j++) {
      out[i * 1024 + j] = j < line.length ? line.charCodeAt(j) : 0x61 + ((i + j) % 26);
    }
    out[i * 1024 + 1023] = 0x0a;
  }
  out.set([0x51, 0x55, 0x49, 0x54, 0x0a], lines * 1024);
  return out;
}

/**
 * Runs a command, writes `input` to its stdin and keeps stdin open until the command exits
 * (the server's close ends it), bounded by `timeoutMs`.
 */
export async function runPeer(
  cmd: string,
  args: string[],
  input: Uint8Array,
  timeoutMs = 30_000,
): Promise<PeerRun> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }, timeoutMs);
  const writer = child.stdin.getWriter();
  const writing = writer.write(input).catch(() => {});
  const output = child.output();
  const result = await output;
  await writing;
  await writer.close().catch(() => {});
  clearTimeout(timer);
  return {
    code: result.code,
    stdout: result.stdout,
    stderr: new TextDecoder().decode(result.stderr),
  };
}

export interface ClientCredentials {
  readonly certPath: string;
  readonly keyPath: string;
}

export function opensslArgs(
  port: number,
  caPath: string,
  options: { suite?: string; groups?: string; client?: ClientCredentials; tls12?: boolean } = {},
): string[] {
  return [
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-servername",
    "localhost",
    options.tls12 ? "-tls1_2" : "-tls1_3",
    ...(options.suite ? ["-ciphersuites", options.suite] : []),
    ...(options.groups ? ["-groups", options.groups] : []),
    ...(options.client ? ["-cert", options.client.certPath, "-key", options.client.keyPath] : []),
    "-CAfile",
    caPath,
    "-verify_return_error",
    "-quiet",
  ];
}

export function gnutlsArgs(
  port: number,
  caPath: string,
  options: { cipher?: string; group?: string; client?: ClientCredentials } = {},
): string[] {
  const priority = [
    "NORMAL:-VERS-ALL:+VERS-TLS1.3",
    options.cipher ? `-CIPHER-ALL:+${options.cipher}` : "",
    options.group ? `-GROUP-ALL:+${options.group}` : "",
  ].filter(Boolean).join(":");
  return [
    `--x509cafile=${caPath}`,
    `--port=${port}`,
    `--priority=${priority}`,
    "--sni-hostname=localhost",
    "--logfile=/dev/null",
    ...(options.client
      ? [`--x509certfile=${options.client.certPath}`, `--x509keyfile=${options.client.keyPath}`]
      : []),
    "127.0.0.1",
  ];
}

/**
 * A Python `ssl` client: `PORT CAFILE LENGTH [CERT KEY]`; sends LENGTH bytes of stdin through the
 * server and prints what came back.
 */
export const PYTHON_ECHO_CLIENT = `
import socket, ssl, sys
port, cafile, length = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
if len(sys.argv) > 5:
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
data = sys.stdin.buffer.read(length)
with socket.create_connection(("127.0.0.1", port)) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        sys.stderr.write(f"{s.version()} {s.cipher()[0]}\\n")
        s.sendall(data)
        received = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
        try:
            s.unwrap()
        except (OSError, ssl.SSLError):
            pass
        sys.stdout.buffer.write(received)
`;
