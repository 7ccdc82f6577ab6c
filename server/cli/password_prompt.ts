/**
 * Reads a password for `postern user add|passwd`: the first line of stdin when stdin is not a
 * terminal (scripts, tests), otherwise an interactive prompt on stderr with echo turned off.
 */
import { CliError } from "./args.ts";

/** Longest password accepted; scrypt hashes any length, but a cap keeps stdin bounded. */
export const MAX_PASSWORD_LENGTH = 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Reads a password; `confirm` asks twice on a terminal. `stdin`, when given, is read instead
 * of the process's stdin (tests). Throws `CliError` on empty input.
 */
export async function readPassword(
  prompt: string,
  confirm: boolean,
  stdin?: ReadableStream<Uint8Array>,
): Promise<string> {
  if (stdin !== undefined) return checked(await readFirstLine(stdin));
  if (!Deno.stdin.isTerminal()) return checked(await readFirstLine(Deno.stdin.readable));
  const first = checked(await promptHidden(prompt));
  if (confirm) {
    const second = await promptHidden("Repeat the password: ");
    if (second !== first) throw new CliError("the passwords do not match");
  }
  return first;
}

function checked(password: string): string {
  if (password.length === 0) throw new CliError("the password is empty");
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new CliError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`);
  }
  return password;
}

/** The first line of a stream without its line ending; reads at most a few KiB. */
export async function readFirstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const limit = MAX_PASSWORD_LENGTH * 4 + 2;
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size <= limit) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.length;
      if (value.includes(0x0a)) break;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  const text = decoder.decode(bytes);
  const end = text.indexOf("\n");
  const line = end === -1 ? text : text.slice(0, end);
  if (line.length > MAX_PASSWORD_LENGTH) {
    throw new CliError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`);
  }
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** Prompts on stderr and reads one line from the terminal without echoing it. */
async function promptHidden(prompt: string): Promise<string> {
  await Deno.stderr.write(encoder.encode(prompt));
  Deno.stdin.setRaw(true);
  const chars: string[] = [];
  const buffer = new Uint8Array(64);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const ch of decoder.decode(buffer.subarray(0, n))) {
        if (ch === "\r" || ch === "\n") return chars.join("");
        if (ch === "\x03" || (ch === "\x04" && chars.length === 0)) {
          throw new CliError("cancelled");
        }
        if (ch === "\x7f" || ch === "\b") chars.pop();
        else if (ch >= " ") chars.push(ch);
        if (chars.length > MAX_PASSWORD_LENGTH) {
          throw new CliError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`);
        }
      }
    }
    return chars.join("");
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
}
