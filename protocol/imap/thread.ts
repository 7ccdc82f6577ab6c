/**
 * The THREAD algorithms of RFC 5256: ORDEREDSUBJECT (Section 3, "ORDEREDSUBJECT") and
 * REFERENCES (Section 3, steps 1 to 7, after Jamie Zawinski's threading), over plain records,
 * and the `thread-list` syntax of the THREAD response (Section 4).
 */
import type { BaseSubject } from "./base_subject.ts";

/** What threading knows of one message. */
export interface ThreadMessage {
  /** Sequence number: breaks ties in date order. */
  readonly seq: number;
  /** The number the response shows (sequence number or UID). */
  readonly n: number;
  /** Sent date in milliseconds (RFC 5256, Section 2.2). */
  readonly date: number;
  readonly subject: BaseSubject;
  /** The base subject as compared. */
  readonly subjectKey: string;
  readonly messageId: string | null;
  readonly references: readonly string[];
}

/** A thread node; `message` is null for a dummy (a message referenced but not present). */
export interface ThreadNode {
  message: ThreadMessage | null;
  parent: ThreadNode | null;
  children: ThreadNode[];
}

function node(message: ThreadMessage | null): ThreadNode {
  return { message, parent: null, children: [] };
}

function byDate(a: ThreadMessage, b: ThreadMessage): number {
  return a.date - b.date || a.seq - b.seq;
}

/** The message a node sorts by: its own, or a dummy's first child's. */
function sortMessage(n: ThreadNode): ThreadMessage | null {
  let x: ThreadNode | undefined = n;
  while (x !== undefined && x.message === null) x = x.children[0];
  return x?.message ?? null;
}

function compareNodes(a: ThreadNode, b: ThreadNode): number {
  const ma = sortMessage(a);
  const mb = sortMessage(b);
  if (ma === null || mb === null) return ma === null ? (mb === null ? 0 : -1) : 1;
  return byDate(ma, mb);
}

/**
 * ORDEREDSUBJECT: messages grouped by base subject, each group a parent and its children.
 * Subjects are ranked (by code unit, as `<` compares), by `ranks` when it ranks every subject
 * (SORT keeps a mailbox's), else here; then the messages are sorted once by date, and grouped
 * by rank with a counting sort that keeps that order, so that no sort compares strings.
 */
export function threadOrderedSubject(
  messages: readonly ThreadMessage[],
  ranks?: ReadonlyMap<string, number>,
): ThreadNode[] {
  const n = messages.length;
  let rankOf = ranks;
  if (rankOf === undefined || messages.some((m) => !rankOf!.has(m.subjectKey))) {
    const distinct = [...new Set(messages.map((m) => m.subjectKey))].sort();
    rankOf = new Map(distinct.map((v, i) => [v, i]));
  }
  const rank = new Uint32Array(n);
  let buckets = 0;
  for (let i = 0; i < n; i++) {
    rank[i] = rankOf.get(messages[i]!.subjectKey)!;
    if (rank[i]! >= buckets) buckets = rank[i]! + 1;
  }
  // By date, then sequence number.
  const byDate = Uint32Array.from(messages.keys()).sort((a, b) =>
    messages[a]!.date - messages[b]!.date || messages[a]!.seq - messages[b]!.seq
  );
  // By rank, each rank's messages by date (a stable counting sort of `byDate`).
  const start = new Uint32Array(buckets + 1);
  for (let i = 0; i < n; i++) start[rank[i]! + 1]!++;
  for (let r = 0; r < buckets; r++) start[r + 1]! += start[r]!;
  const grouped = new Uint32Array(n);
  for (const i of byDate) grouped[start[rank[i]!]!++] = i;
  const nodes: (ThreadNode | undefined)[] = new Array(n);
  let current: ThreadNode | null = null;
  let currentRank = -1;
  for (const i of grouped) {
    const child = node(messages[i]!);
    if (current !== null && rank[i] === currentRank) {
      child.parent = current;
      current.children.push(child);
    } else {
      current = child;
      currentRank = rank[i]!;
      nodes[i] = child;
    }
  }
  // The groups by their first message's date: the roots in `byDate` order.
  const roots: ThreadNode[] = [];
  for (const i of byDate) {
    const root = nodes[i];
    if (root !== undefined) roots.push(root);
  }
  return roots;
}

/**
 * Deepest chain of replies kept: a link that would make a chain deeper counts as a loop, so
 * that a hostile mailbox cannot make each link check, or the thread tree, unboundedly deep.
 */
export const MAX_THREAD_DEPTH = 1000;
/** References of one message that are linked (the last ones, nearest the message). */
export const MAX_REFERENCES = 100;

/** True when `a` is `b` or one of its ancestors, or `b` is already too deep to link below. */
function isAncestorOrSelf(a: ThreadNode, b: ThreadNode): boolean {
  let depth = 0;
  for (let x: ThreadNode | null = b; x !== null; x = x.parent) {
    if (x === a || ++depth >= MAX_THREAD_DEPTH) return true;
  }
  return false;
}

/** Every node below the roots, children before their parents. */
function postOrder(roots: readonly ThreadNode[]): ThreadNode[] {
  const out: ThreadNode[] = [];
  const stack = [...roots];
  while (stack.length > 0) {
    const n = stack.pop()!;
    out.push(n);
    for (const c of n.children) stack.push(c);
  }
  return out.reverse();
}

function link(parent: ThreadNode, child: ThreadNode): void {
  child.parent = parent;
  parent.children.push(child);
}

function unlink(child: ThreadNode): void {
  const p = child.parent;
  if (p === null) return;
  p.children.splice(p.children.indexOf(child), 1);
  child.parent = null;
}

/** Step 4 on one list whose members' children are pruned already. */
function pruneList(list: readonly ThreadNode[], parent: ThreadNode | null): ThreadNode[] {
  const out: ThreadNode[] = [];
  for (const c of list) {
    if (c.message === null) {
      if (c.children.length === 0) continue;
      if (parent !== null || c.children.length === 1) {
        for (const k of c.children) {
          k.parent = parent;
          out.push(k);
        }
        continue;
      }
    }
    out.push(c);
  }
  return out;
}

/** Step 4: drops childless dummies and promotes dummies' children (at the root only if one). */
function prune(roots: readonly ThreadNode[]): ThreadNode[] {
  for (const n of postOrder(roots)) n.children = pruneList(n.children, n);
  return pruneList(roots, null);
}

/** REFERENCES threading (RFC 5256, Section 3, steps 1 to 7). */
export function threadReferences(messages: readonly ThreadMessage[]): ThreadNode[] {
  const ordered = [...messages].sort((a, b) => a.seq - b.seq);
  const byId = new Map<string, ThreadNode>();
  const all: ThreadNode[] = [];
  const lookup = (id: string): ThreadNode => {
    let n = byId.get(id);
    if (n === undefined) {
      n = node(null);
      byId.set(id, n);
      all.push(n);
    }
    return n;
  };
  // (1) Containers by Message-ID; messages without one, or with a taken one, get their own.
  for (const m of ordered) {
    let container: ThreadNode;
    const existing = m.messageId === null ? undefined : byId.get(m.messageId);
    if (m.messageId !== null && (existing === undefined || existing.message === null)) {
      container = lookup(m.messageId);
    } else {
      container = node(null);
      all.push(container);
    }
    container.message = m;
    // (1A) Link the references in order, keeping existing links and avoiding loops.
    let prev: ThreadNode | null = null;
    for (const id of m.references.slice(-MAX_REFERENCES)) {
      const r = lookup(id);
      if (prev !== null && r.parent === null && !isAncestorOrSelf(r, prev)) link(prev, r);
      prev = r;
    }
    // (1B) The last reference is the parent, replacing any link a truncated header made.
    unlink(container);
    if (prev !== null && !isAncestorOrSelf(container, prev)) link(prev, container);
  }
  // (2)-(4) The root set, pruned.
  let roots = prune(all.filter((n) => n.parent === null));
  // (5) Roots by date (a dummy by its first child's, once its children are sorted).
  for (const r of roots) if (r.message === null) r.children.sort(compareNodes);
  roots.sort(compareNodes);
  // (6) Merge roots with the same base subject.
  const subjectOf = (n: ThreadNode): ThreadMessage | null =>
    n.message ?? n.children[0]?.message ?? null;
  const table = new Map<string, ThreadNode>();
  for (const r of roots) {
    const m = subjectOf(r);
    if (m === null || m.subjectKey === "") continue;
    const t = table.get(m.subjectKey);
    if (
      t === undefined ||
      (r.message === null && t.message !== null) ||
      (t.message !== null && r.message !== null && t.message.subject.replyOrForward &&
        !r.message.subject.replyOrForward)
    ) table.set(m.subjectKey, r);
  }
  const removed = new Set<ThreadNode>();
  for (const r of [...roots]) {
    const m = subjectOf(r);
    if (m === null || m.subjectKey === "") continue;
    const t = table.get(m.subjectKey)!;
    if (t === r) continue;
    if (t.message === null && r.message === null) {
      for (const c of r.children) link(t, c);
      r.children = [];
    } else if (t.message === null) {
      link(t, r);
    } else if (r.message === null) {
      // Cannot happen (a dummy wins the table), kept for completeness.
      link(r, t);
      removed.add(t);
      table.set(m.subjectKey, r);
      continue;
    } else if (!t.message.subject.replyOrForward && r.message.subject.replyOrForward) {
      link(t, r);
    } else {
      const dummy = node(null);
      roots[roots.indexOf(t)] = dummy;
      link(dummy, t);
      link(dummy, r);
      table.set(m.subjectKey, dummy);
    }
    removed.add(r);
  }
  roots = roots.filter((r) => !removed.has(r));
  // (7) Siblings by date, deepest first; Dovecot sorts the roots again too, and so do we.
  for (const n of postOrder(roots)) n.children.sort(compareNodes);
  return roots.sort(compareNodes);
}

function formatNode(root: ThreadNode): string {
  const parts: string[] = [];
  const stack: (ThreadNode | string)[] = [root];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (typeof x === "string") {
      parts.push(x);
      continue;
    }
    const head = x.message === null ? "" : String(x.message.n);
    parts.push(head);
    if (x.children.length === 0) continue;
    if (x.children.length === 1 && x.message !== null) {
      parts.push(" ");
      stack.push(x.children[0]!);
      continue;
    }
    if (head !== "") parts.push(" ");
    for (let i = x.children.length - 1; i >= 0; i--) stack.push(")", x.children[i]!, "(");
  }
  return parts.join("");
}

/** The `thread-list` of a THREAD response (RFC 5256, Section 4): `(1 2 (3)(4))(5)`. */
export function formatThreads(roots: readonly ThreadNode[]): string {
  const parts: string[] = [];
  for (const r of roots) {
    // A message alone, the most common thread by far, needs no walk.
    if (r.children.length === 0 && r.message !== null) parts.push(`(${r.message.n})`);
    else parts.push(`(${formatNode(r)})`);
  }
  return parts.join("");
}
