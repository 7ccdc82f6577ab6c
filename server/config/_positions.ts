/**
 * Positions in the configuration file: the YAML document turned into plain data for the schema,
 * and every problem — a schema issue or a reader's own check — turned into a `file:line:col`
 * line that points at the value, its key, or the section it is missing from.
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type Pair,
} from "yaml";
import * as v from "valibot";
import { describeValue } from "./_schema.ts";

/** Where a setting sits in the file: mapping keys and list indexes, e.g. `["listen", 0, "tls"]`. */
export type SettingPath = readonly (string | number)[];

/** A setting's name as messages show it: `listen[0].tls`, `quota.accounts.alice`. */
export function showPath(path: SettingPath): string {
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`).join("");
}

/** One problem found in a configuration file; `line` and `col` are 1-based. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** A configuration that cannot be used; the message holds one `file:line:col: …` line per issue. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.message}`).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** The file being read: its document, where problems go, and how paths resolve. */
export class Positions {
  readonly file: string;
  readonly baseDir: string;
  readonly checkFiles: boolean;
  readonly issues: ConfigIssue[] = [];
  readonly #doc: Document;
  readonly #lines: LineCounter;

  constructor(
    doc: Document,
    lines: LineCounter,
    file: string,
    baseDir: string,
    checkFiles: boolean,
  ) {
    this.#doc = doc;
    this.#lines = lines;
    this.file = file;
    this.baseDir = baseDir;
    this.checkFiles = checkFiles;
  }

  /**
   * The document as plain data. A key whose value is empty (`key:` or `key: ~`) counts as
   * absent, so that its default applies; keys that are not plain names are reported here.
   */
  plain(): unknown {
    if (this.#doc.contents === null) return {};
    return this.#plain(this.#doc.contents, []);
  }

  #plain(node: unknown, path: SettingPath): unknown {
    if (isAlias(node)) return this.#plain(node.resolve(this.#doc), path);
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items as Pair<unknown, unknown>[]) {
        const key = pair.key;
        if (!isScalar(key) || typeof key.value !== "string") {
          const what = path.length === 0 ? "the configuration" : showPath(path);
          this.#at(key as Node, `keys in ${what} must be plain names`);
          continue;
        }
        const value = this.#plain(pair.value, [...path, key.value]);
        if (value !== null && value !== undefined) out[key.value] = value;
      }
      return out;
    }
    if (isSeq(node)) return node.items.map((item, i) => this.#plain(item, [...path, i]));
    if (isScalar(node)) return node.value;
    return null;
  }

  /** The value node at `path`, if the file has one. */
  node(path: SettingPath): Node | undefined {
    const node = path.length === 0 ? this.#doc.contents : this.#doc.getIn(path, true);
    return isScalar(node) && node.value === null ? undefined : (node as Node | undefined);
  }

  /** The key node of `path` when its last step is a mapping key. */
  keyNode(path: SettingPath): Node | undefined {
    const last = path.at(-1);
    if (typeof last !== "string") return undefined;
    const parent = this.#doc.getIn(path.slice(0, -1), true) ?? this.#doc.contents;
    if (!isMap(parent)) return undefined;
    const pair = (parent.items as Pair<unknown, unknown>[]).find((p) =>
      isScalar(p.key) && p.key.value === last
    );
    return pair?.key as Node | undefined;
  }

  /** Where something about the section at `path` is reported: its key, or its item. */
  anchor(path: SettingPath): Node | undefined {
    return this.keyNode(path) ?? this.node(path);
  }

  /** Reports `message` as is, at the value of `path` (or its key, or the section). */
  report(path: SettingPath, message: string): void {
    const at = this.node(path) ?? this.keyNode(path) ?? this.#nearest(path);
    this.#at(at, message);
  }

  /** Reports `name: message` at the value of the setting `path`. */
  fail(path: SettingPath, message: string): void {
    this.report(path, `${showPath(path)}: ${message}`);
  }

  /** Reports a required key that is absent, at the key of its section. */
  missing(path: SettingPath): void {
    const section = path.slice(0, -1);
    const where = section.length === 0 ? "" : ` in ${showPath(section)}`;
    this.#at(this.#nearest(path), `missing required key "${String(path.at(-1))}"${where}`);
  }

  /** A setting's name as messages show it. */
  show(path: SettingPath): string {
    return showPath(path);
  }

  /**
   * Checks `value`, found at `base`, against `schema`; reports its issues and returns the
   * output when there were none.
   */
  section<S extends v.GenericSchema>(
    schema: S,
    value: unknown,
    base: SettingPath,
  ): v.InferOutput<S> | undefined {
    const result = v.safeParse(schema, value, { abortEarly: false, abortPipeEarly: true });
    if (result.success) return result.output;
    this.schemaIssues(result.issues, base);
    return undefined;
  }

  /** Whether a problem has been reported so far. */
  get failed(): boolean {
    return this.issues.length > 0;
  }

  /** Reports the issues of a schema check of the value found at `base`. */
  schemaIssues(issues: readonly v.BaseIssue<unknown>[], base: SettingPath = []): void {
    const mappings = new Set<unknown>();
    for (const issue of issues) {
      const path: SettingPath = [
        ...base,
        ...(issue.path ?? []).map((p) => p.key as string | number),
      ];
      const last = issue.path?.at(-1);
      const keyIssue = last?.origin === "key" || issue.expected === "never";
      if (keyIssue && Array.isArray(last?.input)) {
        // An object schema given a list: one "must be a mapping" line, not one per item.
        if (mappings.has(last.input)) continue;
        mappings.add(last.input);
        this.#mapping(path.slice(0, -1), last.input);
      } else if (issue.expected === "never") {
        const section = path.slice(0, -1);
        const where = section.length === 0 ? "" : ` in ${showPath(section)}`;
        const at = this.keyNode(path) ?? this.#nearest(path);
        this.#at(at, `unknown key "${String(path.at(-1))}"${where}${issue.message}`);
      } else if (last?.origin === "key") {
        this.missing(path);
      } else if (issue.message.startsWith("@mapping")) {
        this.#mapping(path, issue.input, issue.message.slice("@mapping".length));
      } else {
        this.fail(path, issue.message);
      }
    }
  }

  #mapping(path: SettingPath, input: unknown, of = "keys"): void {
    const what = path.length === 0 ? "the configuration" : showPath(path);
    this.report(path, `${what} must be a mapping of ${of}, got ${describeValue(input)}`);
  }

  /** The closest existing node on the way to `path`. */
  #nearest(path: SettingPath): Node | undefined {
    for (let n = path.length - 1; n > 0; n--) {
      const section = path.slice(0, n);
      const at = this.anchor(section);
      if (at !== undefined) return at;
    }
    return this.#doc.contents as Node | undefined;
  }

  #at(node: Node | null | undefined, message: string): void {
    const { line, col } = this.#lines.linePos(node?.range?.[0] ?? 0);
    this.issues.push({ file: this.file, line, col, message });
  }
}
