/**
 * LIST (RFC 9051, Section 6.3.9) with LIST-EXTENDED (RFC 5258): selection options SUBSCRIBED,
 * REMOTE (no remote mailboxes exist, so it changes nothing), RECURSIVEMATCH (CHILDINFO extended
 * data, Section 3.5) and SPECIAL-USE (RFC 6154, Section 3); several patterns; and RETURN
 * (SUBSCRIBED CHILDREN SPECIAL-USE STATUS) with STATUS from LIST-STATUS (RFC 5819). LSUB is
 * RFC 3501, Section 6.3.9. Wildcards: `*` matches anything, `%` anything but the "/" separator.
 */
import type { Mailbox } from "../../../mailstore/mail_store.ts";
import type { CommandContext, CommandSpec } from "../context.ts";
import { badSyntax } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
import { astringValue } from "../response.ts";
import { account } from "./_util.ts";
import { readStatusItems, writeStatus } from "./status.ts";

/** Longest LIST pattern accepted, in UTF-16 code units. */
const MAX_PATTERN = 1024;

/**
 * A compiled LIST pattern: `*` matches anything, `%` anything but "/" (RFC 9051, 6.3.9).
 * Matching simulates the pattern as an automaton, so hostile patterns such as `*a*a*a*b` cost
 * O(pattern × name) rather than exponential backtracking.
 */
export interface ListPattern {
  test(name: string): boolean;
}

export function compilePattern(pattern: string): ListPattern {
  if (pattern.length > MAX_PATTERN) throw badSyntax("Mailbox pattern too long");
  // Runs of wildcards collapse: any run holding `*` is `*`, a run of `%` is `%`.
  const p = pattern.replace(/[*%]{2,}/g, (run) => run.includes("*") ? "*" : "%");
  const m = p.length;
  const wild = (i: number) => p[i] === "*" || p[i] === "%";
  const close = (set: Uint8Array) => {
    for (let i = 0; i < m; i++) if (set[i] && wild(i)) set[i + 1] = 1;
  };
  return {
    test(name: string): boolean {
      let cur = new Uint8Array(m + 1);
      cur[0] = 1;
      close(cur);
      // Code units on both sides, so astral characters compare unit by unit.
      for (let k = 0; k < name.length; k++) {
        const ch = name[k];
        const next = new Uint8Array(m + 1);
        let alive = false;
        for (let i = 0; i < m; i++) {
          if (!cur[i]) continue;
          const c = p[i];
          if (c === "*" || (c === "%" && ch !== "/")) {
            next[i] = 1;
            alive = true;
          } else if (c === ch) {
            next[i + 1] = 1;
            alive = true;
          }
        }
        if (!alive) return false;
        close(next);
        cur = next;
      }
      return cur[m] === 1;
    },
  };
}

const parentCache = new WeakMap<readonly Mailbox[], Set<string>>();

/** Names that have at least one child, computed once per listing. */
function parentsOf(all: readonly Mailbox[]): Set<string> {
  let parents = parentCache.get(all);
  if (parents === undefined) {
    parents = new Set();
    for (const m of all) {
      for (let i = m.name.lastIndexOf("/"); i > 0; i = m.name.lastIndexOf("/", i - 1)) {
        parents.add(m.name.slice(0, i));
      }
    }
    parentCache.set(all, parents);
  }
  return parents;
}

/** Mailbox attributes: children, special use and, when asked, subscription. */
export async function listAttributes(
  ctx: CommandContext,
  mailbox: Mailbox,
  all: readonly Mailbox[] | null,
  subscribed = false,
): Promise<string[]> {
  const mailboxes = all ?? await ctx.store.listMailboxes(mailbox.accountId);
  const attrs = [parentsOf(mailboxes).has(mailbox.name) ? "\\HasChildren" : "\\HasNoChildren"];
  if (mailbox.specialUse !== null) attrs.push(mailbox.specialUse);
  if (subscribed && mailbox.subscribed) attrs.push("\\Subscribed");
  return attrs;
}

interface ListArgs {
  readonly selectSubscribed: boolean;
  readonly selectSpecialUse: boolean;
  readonly recursiveMatch: boolean;
  /** Whether the command used the extended syntax (RFC 5258, Section 3). */
  readonly extended: boolean;
  readonly reference: string;
  readonly patterns: readonly string[];
  readonly returnSubscribed: boolean;
  readonly status: readonly string[] | null;
}

function readPattern(ctx: CommandContext, r: CommandReader): string {
  return ctx.mailboxFromClient(r.listMailbox());
}

function readListArgs(ctx: CommandContext, r: CommandReader): ListArgs {
  let selectSubscribed = false;
  let selectSpecialUse = false;
  let recursiveMatch = false;
  let extended = false;
  r.sp();
  if (r.peek() === 0x28) {
    extended = true;
    for (const opt of r.list(() => r.keyword("selection option"))) {
      if (opt === "SUBSCRIBED") selectSubscribed = true;
      else if (opt === "SPECIAL-USE") selectSpecialUse = true;
      else if (opt === "RECURSIVEMATCH") recursiveMatch = true;
      else if (opt !== "REMOTE") throw badSyntax(`Unknown LIST selection option ${opt}`);
    }
    // RECURSIVEMATCH alone is an error (RFC 5258, Section 3.1).
    if (recursiveMatch && !selectSubscribed && !selectSpecialUse) {
      throw badSyntax("RECURSIVEMATCH needs another selection option");
    }
    r.sp();
  }
  const reference = ctx.mailboxFromClient(r.astring("reference"));
  r.sp();
  if (r.peek() === 0x28) extended = true;
  const patterns = r.peek() === 0x28
    ? r.list(() => readPattern(ctx, r), false)
    : [readPattern(ctx, r)];
  let returnSubscribed = selectSubscribed;
  let status: string[] | null = null;
  if (r.trySp()) {
    extended = true;
    if (r.keyword("RETURN") !== "RETURN") throw badSyntax("Expected RETURN");
    r.sp();
    r.list(() => {
      const opt = r.keyword("return option");
      if (opt === "STATUS" && status !== null) throw badSyntax("Duplicate STATUS return option");
      if (opt === "SUBSCRIBED") returnSubscribed = true;
      else if (opt === "STATUS") {
        r.sp();
        status = readStatusItems(r);
      } else if (opt !== "CHILDREN" && opt !== "SPECIAL-USE") {
        throw badSyntax(`Unknown LIST return option ${opt}`);
      }
      return opt;
    });
  }
  r.end();
  return {
    selectSubscribed,
    selectSpecialUse,
    recursiveMatch,
    extended,
    reference,
    patterns,
    returnSubscribed,
    status,
  };
}

function fullPattern(reference: string, pattern: string): string {
  const joined = reference === "" || pattern.startsWith("/") ? pattern : reference + pattern;
  return joined.replace(/^inbox(?=\/|$)/i, "INBOX");
}

function writeListLine(
  ctx: CommandContext,
  command: string,
  attrs: readonly string[],
  name: string,
  extended = "",
): void {
  ctx.out.text(`* ${command} (${attrs.join(" ")}) "/" `);
  ctx.out.value(astringValue(ctx.mailboxToClient(name), ctx.utf8));
  ctx.out.text(`${extended}\r\n`);
}

/** Whether `name` has a descendant in `names` that no pattern reaches (RFC 5258, 3.5). */
function hasHiddenDescendant(
  name: string,
  names: Iterable<string>,
  matches: (name: string) => boolean,
): boolean {
  const prefix = name + "/";
  for (const n of names) if (n.startsWith(prefix) && !matches(n)) return true;
  return false;
}

const CHILDINFO_SUBSCRIBED = ' ("CHILDINFO" ("SUBSCRIBED"))';

export const listCommand: CommandSpec = {
  name: "LIST",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    const args = readListArgs(ctx, r);
    const acct = account(ctx);
    if (args.patterns.length === 1 && args.patterns[0] === "") {
      writeListLine(ctx, "LIST", ["\\Noselect"], "");
      return { text: "LIST completed" };
    }
    const regexps = args.patterns.map((p) => compilePattern(fullPattern(args.reference, p)));
    const matches = (name: string) => regexps.some((re) => re.test(name));
    const mailboxes = await ctx.store.listMailboxes(acct.id);
    const byName = new Map(mailboxes.map((m) => [m.name, m]));
    if (args.selectSubscribed) {
      const subscribed = new Set(await ctx.store.listSubscriptions(acct.id));
      const names = new Set(subscribed);
      // With RECURSIVEMATCH, unsubscribed ancestors of subscribed names are candidates too.
      if (args.recursiveMatch) {
        for (const name of subscribed) {
          for (let i = name.indexOf("/"); i > 0; i = name.indexOf("/", i + 1)) {
            names.add(name.slice(0, i));
          }
        }
      }
      for (const name of [...names].sort()) {
        if (!matches(name)) continue;
        const childInfo = args.recursiveMatch && hasHiddenDescendant(name, subscribed, matches)
          ? CHILDINFO_SUBSCRIBED
          : "";
        const isSubscribed = subscribed.has(name);
        if (!isSubscribed && childInfo === "") continue;
        const mailbox = byName.get(name);
        if (mailbox === undefined) {
          const attrs = isSubscribed ? ["\\NonExistent", "\\Subscribed"] : ["\\NonExistent"];
          writeListLine(ctx, "LIST", attrs, name, childInfo);
          continue;
        }
        if (args.selectSpecialUse && mailbox.specialUse === null) continue;
        const attrs = await listAttributes(ctx, mailbox, mailboxes, true);
        writeListLine(ctx, "LIST", attrs, name, childInfo);
        if (args.status !== null) await writeStatus(ctx, mailbox, args.status);
      }
      return { text: "LIST completed" };
    }
    for (const mailbox of mailboxes) {
      if (!matches(mailbox.name)) continue;
      if (args.selectSpecialUse && mailbox.specialUse === null) continue;
      const attrs = await listAttributes(ctx, mailbox, mailboxes, args.returnSubscribed);
      writeListLine(ctx, "LIST", attrs, mailbox.name);
      if (args.status !== null) await writeStatus(ctx, mailbox, args.status);
      await ctx.maybeFlush();
    }
    if (!args.selectSpecialUse) {
      // A missing parent whose children the pattern cannot reach (`%`) is still listed, so
      // that clients can descend to them (RFC 9051, Section 6.3.9).
      const missing = new Set<string>();
      for (const m of mailboxes) {
        for (let i = m.name.indexOf("/"); i > 0; i = m.name.indexOf("/", i + 1)) {
          const parent = m.name.slice(0, i);
          if (!byName.has(parent) && matches(parent) && !matches(m.name)) missing.add(parent);
        }
      }
      // Extended LIST and IMAP4rev2 name a missing mailbox \NonExistent (RFC 5258, Section 3);
      // a basic IMAP4rev1 LIST keeps \Noselect.
      const flag = ctx.rev2 || args.extended ? "\\NonExistent" : "\\Noselect";
      for (const name of [...missing].sort()) {
        writeListLine(ctx, "LIST", [flag, "\\HasChildren"], name);
      }
    }
    return { text: "LIST completed" };
  },
};

export const lsubCommand: CommandSpec = {
  name: "LSUB",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const reference = ctx.mailboxFromClient(r.astring("reference"));
    r.sp();
    const pattern = readPattern(ctx, r);
    r.end();
    const acct = account(ctx);
    if (pattern === "") {
      writeListLine(ctx, "LSUB", ["\\Noselect"], "");
      return { text: "LSUB completed" };
    }
    const re = compilePattern(fullPattern(reference, pattern));
    const existing = new Set((await ctx.store.listMailboxes(acct.id)).map((m) => m.name));
    const subscribed = await ctx.store.listSubscriptions(acct.id);
    const subscribedSet = new Set(subscribed);
    const answer = new Map<string, boolean>();
    for (const name of subscribed) {
      if (re.test(name)) {
        answer.set(name, existing.has(name));
        continue;
      }
      if (!pattern.includes("%")) continue;
      // `%` stops at a level above a subscribed name: that unsubscribed ancestor is listed
      // with \Noselect (RFC 3501, Section 6.3.9).
      for (let i = name.indexOf("/"); i > 0; i = name.indexOf("/", i + 1)) {
        const parent = name.slice(0, i);
        if (!subscribedSet.has(parent) && re.test(parent)) answer.set(parent, false);
      }
    }
    for (const name of [...answer.keys()].sort()) {
      writeListLine(ctx, "LSUB", answer.get(name) ? [] : ["\\Noselect"], name);
    }
    return { text: "LSUB completed" };
  },
};
