/**
 * Paths and files named by the configuration: resolved against the file's folder, and checked
 * (readable, parsable) when the reader is asked to check files.
 */
import { isAbsolute, resolve } from "node:path";
import type { Positions, SettingPath } from "./_positions.ts";
import { checkCertificates } from "./key_match.ts";
import { describeValue } from "./_schema.ts";

/** `path` made absolute against `baseDir`. */
export function resolvePath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

export function fileProblem(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  return error instanceof Error ? error.message : "cannot be read";
}

export function fileStatus(path: string): string | null {
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) return "not a regular file";
    return null;
  } catch (error) {
    return fileProblem(error);
  }
}

export function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

export function firstLine(text: string): string {
  const end = text.search(/\r?\n/);
  return end === -1 ? text : text.slice(0, end);
}

export function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** Why a CA file cannot be used, or null. */
export function caProblem(path: string): string | null {
  const pem = readText(path);
  return pem === null ? "cannot be read" : checkCertificates(pem);
}

/**
 * The setting at `key` as an absolute path (`fallback` when absent), checked to be a readable
 * file when `mustExist` and files are checked.
 */
export function readPath(
  at: Positions,
  key: SettingPath,
  value: string | undefined,
  fallback: string,
  mustExist: boolean,
): string {
  const written = value ?? fallback;
  const absolute = resolvePath(at.baseDir, written);
  if (mustExist && at.checkFiles) {
    const problem = fileStatus(absolute);
    const shown = value !== undefined ? `"${written}"` : `"${written}" (the default)`;
    if (problem !== null) at.fail(key, `cannot read ${shown} at ${absolute}: ${problem}`);
  }
  return absolute;
}

/**
 * A setting holding one path or a list of them, each resolved and (when files are checked)
 * read and judged by `contentProblem`.
 */
export function readPathList(
  at: Positions,
  key: SettingPath,
  value: unknown,
  fallback: readonly string[],
  contentProblem: (path: string) => string | null = caProblem,
): string[] {
  if (value === undefined) {
    return fallback.map((p) => {
      const absolute = resolvePath(at.baseDir, p);
      if (at.checkFiles) {
        const problem = fileStatus(absolute) ?? contentProblem(absolute);
        if (problem !== null) {
          at.fail(key, `cannot read "${p}" (the default) at ${absolute}: ${problem}`);
        }
      }
      return absolute;
    });
  }
  const list = Array.isArray(value);
  const items: unknown[] = list ? value : [value];
  const paths: string[] = [];
  items.forEach((item, index) => {
    const itemKey = list ? [...key, index] : key;
    if (typeof item !== "string" || item === "") {
      at.fail(itemKey, `expected a file path, got ${describeValue(item)}`);
      return;
    }
    const absolute = resolvePath(at.baseDir, item);
    if (at.checkFiles) {
      const problem = fileStatus(absolute) ?? contentProblem(absolute);
      if (problem !== null) at.fail(itemKey, `cannot read "${item}" at ${absolute}: ${problem}`);
    }
    paths.push(absolute);
  });
  return paths;
}
