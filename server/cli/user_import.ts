/**
 * `postern user import FILE`: local accounts from a Dovecot passwd-file
 * (`user:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields`, of which only the first two
 * fields are used) or from plain `user:hash` lines. Supported hashes are stored as they are and
 * verify as they are (mailstore/legacy_password.ts); the first successful login replaces them
 * with scrypt. `{PLAIN}` passwords are hashed with scrypt at once, so no clear text is stored.
 */
import { parseImportedHash } from "../../mailstore/legacy_password.ts";
import type { MailStore } from "../../mailstore/mail_store.ts";
import { hashPassword, type ScryptCost } from "../../mailstore/password.ts";
import { CliError } from "./args.ts";

/** Largest file read; a passwd-file of a million users is about 150 MB, so this is generous. */
export const MAX_IMPORT_BYTES = 256 * 1024 * 1024;
const MAX_LINE = 4096;
const MAX_NAME = 256;

/** One line that was not imported. */
export interface ImportProblem {
  readonly line: number;
  readonly message: string;
}

export interface UserImportResult {
  readonly added: number;
  readonly updated: number;
  readonly problems: readonly ImportProblem[];
}

/** One account a line names: the user and the hash to store. */
export type ParsedLine =
  | { readonly kind: "skip" }
  | { readonly kind: "user"; readonly name: string; readonly hash: string }
  | { readonly kind: "problem"; readonly message: string };

/** Reads the file to import, refusing one too large to be a passwd-file. */
export async function readImportFile(path: string): Promise<string> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new CliError(`${path} is not a regular file`);
    if (info.size > MAX_IMPORT_BYTES) {
      throw new CliError(`${path} is larger than ${MAX_IMPORT_BYTES} bytes`);
    }
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (error instanceof Deno.errors.NotFound) throw new CliError(`no such file ${path}`);
    throw new CliError(`cannot read ${path}: ${error instanceof Error ? error.message : error}`);
  }
}

/** Parses one line of a passwd-file; `{PLAIN}` passwords are hashed with `cost`. */
export function parsePasswdLine(line: string, cost: ScryptCost): ParsedLine {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (text.trim() === "" || text.trimStart().startsWith("#")) return { kind: "skip" };
  if (text.length > MAX_LINE) return { kind: "problem", message: "line too long" };
  const fields = text.split(":");
  if (fields.length < 2) return { kind: "problem", message: 'expected "user:hash"' };
  const name = fields[0]!;
  if (name === "" || name.length > MAX_NAME || [...name].some(unusableInName)) {
    return { kind: "problem", message: "invalid user name" };
  }
  const field = fields[1]!;
  if (field === "") return { kind: "problem", message: `no password for "${name}"` };
  const parsed = parseImportedHash(field);
  if ("error" in parsed) return { kind: "problem", message: `"${name}": ${parsed.error}` };
  if ("plain" in parsed) {
    if (parsed.plain === "") return { kind: "problem", message: `no password for "${name}"` };
    return { kind: "user", name, hash: hashPassword(parsed.plain, cost) };
  }
  return { kind: "user", name, hash: parsed.hash };
}

/** Adds or updates one account per usable line; the other lines are reported, not fatal. */
export async function importUsers(
  store: Pick<MailStore, "getAccount" | "createAccount" | "setPasswordHash">,
  text: string,
  cost: ScryptCost,
): Promise<UserImportResult> {
  const problems: ImportProblem[] = [];
  const seen = new Set<string>();
  let added = 0;
  let updated = 0;
  const lines = text.split("\n");
  for (const [index, line] of lines.entries()) {
    const parsed = parsePasswdLine(line, cost);
    if (parsed.kind === "skip") continue;
    if (parsed.kind === "problem") {
      problems.push({ line: index + 1, message: parsed.message });
      continue;
    }
    if (seen.has(parsed.name)) {
      problems.push({ line: index + 1, message: `"${parsed.name}" appears twice` });
      continue;
    }
    seen.add(parsed.name);
    if ((await store.getAccount(parsed.name)) === null) {
      await store.createAccount(parsed.name, parsed.hash);
      added++;
    } else {
      await store.setPasswordHash(parsed.name, parsed.hash);
      updated++;
    }
  }
  return { added, updated, problems };
}

/** Control characters, spaces and IMAP specials would make a name no client can type. */
function unusableInName(c: string): boolean {
  const code = c.charCodeAt(0);
  return code <= 0x20 || code === 0x7f || '"\\(){}%*'.includes(c);
}
