/**
 * Base subject extraction for SORT and THREAD (RFC 5256, Section 2.1), applied to a subject
 * already decoded, folded to lower case and with whitespace runs collapsed (step 1, which the
 * stored search text has done).
 */

/** A base subject, and whether extraction found a reply or forward marker. */
export interface BaseSubject {
  readonly base: string;
  /** Step 2 removed "(fwd)", step 3 a subj-refwd, or step 6 a "[fwd: ...]" wrapper. */
  readonly replyOrForward: boolean;
}

/** subj-leader with subj-refwd: `*subj-blob ("re" / "fw" ["d"]) *WSP [subj-blob] ":"`. */
const REFWD = /^(?:\[[^[\]]*\] *)*(?:re|fwd?) *(?:\[[^[\]]*\] *)?:/;
/** subj-blob: `"[" *BLOBCHAR "]" *WSP`. */
const BLOB = /^\[[^[\]]*\] */;

/** Extracts the base subject of a folded subject (RFC 5256, Section 2.1, steps 2 to 6). */
export function baseSubject(folded: string): BaseSubject {
  let t = folded.trim();
  let replyOrForward = false;
  for (;;) {
    // (2) Trailing subj-trailer: "(fwd)" or whitespace.
    for (;;) {
      if (t.endsWith(" ")) t = t.slice(0, -1);
      else if (t.endsWith("(fwd)")) {
        t = t.slice(0, -5);
        replyOrForward = true;
      } else break;
    }
    // (3)-(5) Leading subj-leaders, then one subj-blob if something remains after it.
    for (;;) {
      const before = t;
      for (;;) {
        if (t.startsWith(" ")) {
          t = t.slice(1);
          continue;
        }
        const m = REFWD.exec(t);
        if (m === null) break;
        t = t.slice(m[0].length);
        replyOrForward = true;
      }
      const blob = BLOB.exec(t);
      if (blob !== null && blob[0].length < t.length) t = t.slice(blob[0].length);
      if (t === before) break;
    }
    // (6) "[fwd: ...]" wrapper: unwrap and start again at step 2.
    if (t.startsWith("[fwd:") && t.endsWith("]")) {
      t = t.slice(5, -1);
      replyOrForward = true;
      continue;
    }
    return { base: t, replyOrForward };
  }
}
