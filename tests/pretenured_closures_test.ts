/**
 * No function literal is assigned straight to a property in the server's code, unless marked.
 *
 * V8's parser marks a function literal on the right of a property assignment (`x.y = () => ...`,
 * `this.#y = function ...`, `x.y ??= ...`, and a class field's initializer) as likely long-lived,
 * and allocates every closure made from it directly in the old generation. Such a closure keeps
 * its scope alive: when that scope is a connection's (an IMAP session's `#run`, a TLS `accept`),
 * the closure, dead with its connection, keeps the session, the channel, the engine and their
 * buffers reachable for every scavenge until the next full collection. Each scavenge then copies
 * and promotes them: before this rule, the young generation copied 2.4 MB per scavenge under
 * `openssl s_time -new` and its longest pause was 13–22 ms; after, 250 KB and 4.5–5.2 ms
 * (`deno run -A bench/handshake_gc_bench.ts`).
 *
 * Instead: assign a closure returned by a function, or a named local, or set several through an
 * object literal (neither is pretenured). `onmessage` and `onerror` handlers are set once per
 * Worker or channel and are left alone; any other site that runs once per process may keep the
 * literal with a `// pretenured: <why>` comment on it or on the line above.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const DIRS = ["server", "protocol", "mailstore"];

/**
 * A property assignment: `.name =` (also `??=`, `||=`, `&&=`), not `==` or `=>`, and not of a
 * Worker's or a channel's `onmessage` or `onerror`.
 */
const ASSIGNMENT =
  /(?<=[\w$)\]])\s*\.\s*(?!on(?:message|messageerror|error)\b)#?[A-Za-z_$][\w$]*\s*(?:\?\?=|\|\|=|&&=|=(?![=>]))\s*/g;
/** A class member with an initializer, at the two-space indent `deno fmt` gives members. */
const FIELD =
  /^ {2}(?:(?:readonly|static|private|protected|public|override|declare)\s+)*#?[A-Za-z_$][\w$]*[?!]?\s*(?::[^=\n]+?)?=(?![=>])\s*/gm;
/** Literals that capture nothing, so they keep nothing alive: `() => {}`, `() => () => {}`. */
const EMPTY = /^(?:\(\)\s*=>\s*)+(?:\{\s*\}|undefined|null)/;

/** Whether `text` starts with a function literal (`function`, `async`, `x =>`, `(...) =>`). */
export function startsWithFunction(text: string): boolean {
  const rest = text.replace(/^async\s+/, "");
  if (/^function\b/.test(rest) || /^[A-Za-z_$][\w$]*\s*=>/.test(rest)) return true;
  if (!rest.startsWith("(")) return false;
  let depth = 0;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === "(") depth++;
    else if (c === ")" && --depth === 0) {
      // `(...) =>` or `(...): Type =>`; a call `(...)(...)` or an expression is not a literal.
      return /^\s*(?::[^;{}=]*?)?=>/.test(rest.slice(i + 1));
    }
  }
  return false;
}

/** The `line: text` of every unmarked site in `source`. */
export function pretenuredSites(source: string): string[] {
  const lines = source.split("\n");
  const lineOf = (index: number) => source.slice(0, index).split("\n").length;
  const marked = (line: number) =>
    /\/\/ pretenured: /.test(lines[line - 1] ?? "") ||
    /\/\/ pretenured: /.test(lines[line - 2] ?? "");
  const sites: string[] = [];
  for (const pattern of [ASSIGNMENT, FIELD]) {
    for (const match of source.matchAll(pattern)) {
      const at = match.index + match[0].length;
      const rest = source.slice(at, at + 400);
      if (!startsWithFunction(rest) || (pattern === FIELD && EMPTY.test(rest))) continue;
      const line = lineOf(match.index + match[0].search(/\S/));
      const text = lines[line - 1]!.trim();
      if (text.startsWith("*") || text.startsWith("//") || marked(line)) continue;
      sites.push(`${line}: ${text}`);
    }
  }
  return sites;
}

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) yield path;
  }
}

Deno.test("pretenured closures: the patterns are recognised", () => {
  const flagged = (s: string) => pretenuredSites(s).length;
  assert.equal(flagged("    session.onClose = () => {\n"), 1);
  assert.equal(flagged("    this.#after = async (x: number): Promise<void> => x;\n"), 1);
  assert.equal(flagged("    s.#check ??= (bytes) => bytes.length;\n"), 1);
  assert.equal(flagged("    worker.onclose = function (e) {};\n"), 1);
  assert.equal(flagged("    worker.onmessage = function (e) {};\n"), 0);
  assert.equal(flagged("    view.onNotice =\n      (n) => n;\n"), 1);
  assert.equal(flagged("  readonly derive: Derive = (raw) => raw;\n"), 1);
  assert.equal(flagged("  #unwatch: () => void = () => {};\n"), 0);
  assert.equal(flagged("  onCommand: (n: string) => () => void = () => () => {};\n"), 0);
  assert.equal(flagged("    session.onClose = close;\n"), 0);
  assert.equal(flagged("    view.onNotice = this.#noticeListener();\n"), 0);
  assert.equal(flagged("    x.running = (async () => {\n    })();\n"), 0);
  assert.equal(flagged("    if (a.b === (c) => c) {}\n"), 0);
  assert.equal(flagged("    // pretenured: once per Worker\n    w.onmessage = (e) => e;\n"), 0);
});

Deno.test("pretenured closures: none in server/, protocol/ or mailstore/ unless marked", async () => {
  const found: string[] = [];
  for (const dir of DIRS) {
    for await (const path of sourceFiles(join(ROOT, dir))) {
      for (const site of pretenuredSites(await Deno.readTextFile(path))) {
        found.push(`${path.slice(ROOT.length)}:${site}`);
      }
    }
  }
  assert.deepEqual(found, []);
});
