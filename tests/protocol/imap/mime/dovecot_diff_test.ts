/**
 * Differential test against Dovecot: every corpus message is appended to a throwaway Dovecot
 * (tests/_support/dovecot.ts: implicit TLS on a free 127.0.0.1 port, a static passdb and a
 * temporary maildir; it runs as root or as any other user) through Python's imaplib, and its
 * ENVELOPE, BODYSTRUCTURE, BODY, BODY[n.MIME], BODY[n] and BINARY.SIZE[n] are compared with
 * ours. Deliberate differences are listed in DIFFERENCES below, each with its reason.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  bodyStructure,
  envelope,
  extractBinary,
  extractSection,
  type MimePart,
  parseMessage,
  parseSectionSpec,
  resolvePart,
} from "../../../../protocol/imap/mime/mod.ts";
import { message, Rng } from "./_random_message.ts";
import { fetchItems, readSexp, readSexps, type Sexp } from "./_sexp.ts";
import { dovecotAvailable, startDovecot } from "../../../_support/dovecot.ts";
import { makeOpensslPki } from "../../../_support/openssl_pki.ts";

/** How many generated messages join the corpus. */
const GENERATED = 200;
const FIXTURES = fromFileUrl(new URL("../../../fixtures/mail/", import.meta.url));
const SCRIPT = fromFileUrl(new URL("./dovecot_fetch.py", import.meta.url));

/**
 * Deliberate differences from Dovecot 2.3: `file` (prefix of a corpus file name), `item`
 * (`envelope`, `bodystructure`, `body`, or `mime:N` / `section:N` / `binsize:N` for a part), and
 * why we differ. Every entry must still differ (a stale entry fails the test).
 */
const DIFFERENCES: readonly { file: string; item: string; reason: string }[] = [
  {
    file: "26-malformed-boundary",
    item: "",
    reason: "Dovecot takes `--b26x` as a delimiter (prefix match); RFC 2046 5.1.1 allows only " +
      "transport padding (whitespace) after the boundary, so we keep that line as content",
  },
  {
    file: "28-boundary-never-appears",
    item: "",
    reason: "Dovecot reports an empty 0-octet text part; we expose the whole body as part 1 so " +
      "the text stays readable",
  },
  {
    file: "30-8bit-latin1-headers",
    item: "envelope",
    reason: "Dovecot passes raw non-UTF-8 header bytes; we read invalid UTF-8 as ISO-8859-1 so " +
      "ENVELOPE is always valid UTF-8 (RFC 9051 and UTF8=ACCEPT clients need it)",
  },
  {
    file: "31-headers-only",
    item: "spec:HEADER.FIELDS.NOT",
    reason: "the last field has no line break (no header/body separator at all): Dovecot " +
      "returns it unterminated and without the blank line; we terminate it and add the blank " +
      "line that RFC 9051 6.4.5 promises",
  },
  {
    file: "35-bare-lf-plain",
    item: "",
    reason: "Dovecot rewrites bare LF to CRLF on output; we serve the stored bytes as they are " +
      "(line-ending canonicalisation belongs to APPEND, not to the MIME layer)",
  },
  {
    file: "36-bare-lf-multipart",
    item: "",
    reason: "bare LF kept as stored (see 35)",
  },
  {
    file: "43-all-extension-fields",
    item: "bodystructure",
    reason: "Dovecot keeps the folding space in a folded Content-Location; RFC 2557 4.4.1 says " +
      "to remove it",
  },
  {
    file: "46-multipart-no-boundary-param",
    item: "",
    reason: "as 28: a multipart without a boundary exposes its body as part 1",
  },
  {
    file: "48-message-global",
    item: "",
    reason: "Dovecot 2.3 treats message/global as opaque; RFC 6532 3.5 defines it as an " +
      "encapsulated message like message/rfc822, so we give its envelope and structure",
  },
  {
    file: "63-base64-garbage",
    item: "binsize:1",
    reason: "Dovecot answers UNKNOWN-CTE for base64 with stray characters; RFC 2045 6.8 says " +
      "to ignore characters outside the alphabet, so we decode",
  },
  {
    file: "66-duplicate-headers",
    item: "envelope",
    reason: "Dovecot takes the last of two Subject fields; we take the first, like " +
      "Content-Type and like most clients",
  },
  {
    file: "68-not-a-message",
    item: "",
    reason: "Dovecot normalises a stray CR before CRLF (maildir storage) and shifts the " +
      "header/body split; we keep the bytes as stored",
  },
  {
    file: "69-message-rfc822-base64",
    item: "",
    reason: "a base64-encoded message/rfc822 (forbidden by RFC 2046 5.2.1) is shown as " +
      "application/octet-stream so clients can download and decode it; Dovecot shows an " +
      "empty envelope and an empty body",
  },
  {
    file: "77-nul-and-long-line",
    item: "",
    reason: "Dovecot replaces NUL octets with 0x80 in BODY[] output (NUL may not appear in a " +
      "literal, RFC 9051 4.3); we return the stored bytes and leave that to the FETCH encoder",
  },
  {
    file: "78-rfc822-bare-lf-inside",
    item: "",
    reason: "bare LF kept as stored (see 35)",
  },
];

function isLeaf(root: MimePart, path: number[]): boolean {
  const r = resolvePart(root, path);
  return r !== null && r.part.type !== "multipart" && r.part.message === null;
}

/** HEADER, TEXT and HEADER.FIELDS specs of the message and of every message/rfc822 part. */
function extraSpecs(root: MimePart): string[] {
  const out = [
    "HEADER",
    "TEXT",
    "HEADER.FIELDS (From Subject Content-Type)",
    "HEADER.FIELDS.NOT (From Subject Content-Type)",
  ];
  for (const sec of sectionPaths(root)) {
    const r = resolvePart(root, sec.split(".").map(Number));
    if (r !== null && r.part.message !== null && r.part !== root) {
      out.push(`${sec}.HEADER`, `${sec}.TEXT`, `${sec}.HEADER.FIELDS (Subject)`);
    }
  }
  return out;
}

/** The octet count of a `BINARY[...]` answer (`~{n}` literal, quoted string or NIL). */
function binaryLength(resp: string | null): string | null {
  if (resp === null) return null;
  const head = String.fromCharCode(...b64(resp).subarray(0, 200));
  const m = /BINARY\[[^\]]*\] (?:~?\{(\d+)\}|"([^"]*)")/.exec(head);
  if (m === null) return null;
  return m[1] ?? String(m[2]!.length);
}

/** The value after the first `]` of a one-item FETCH response (literal, quoted or NIL). */
function bracketItem(resp: string | null): string | null {
  if (resp === null) return null;
  const bytes = b64(resp);
  const rest = bytes.subarray(bytes.indexOf(0x5d) + 1, bytes.lastIndexOf(0x29));
  const v = readSexps(rest)[0];
  return typeof v === "string" ? v : null;
}

/** Every section path of a tree, in the form FETCH accepts (`1`, `2.1`, ...). */
function sectionPaths(root: MimePart): string[] {
  const out: string[] = [];
  const ofMessage = (msg: MimePart, prefix: string): void => {
    if (msg.type === "multipart") {
      msg.children.forEach((c, i) => ofPart(c, prefix + (i + 1)));
    } else {
      out.push(prefix + "1");
      if (msg.message !== null) ofMessage(msg.message, prefix + "1.");
    }
  };
  const ofPart = (p: MimePart, path: string): void => {
    out.push(path);
    if (p.type === "multipart") p.children.forEach((c, i) => ofPart(c, path + "." + (i + 1)));
    else if (p.message !== null) ofMessage(p.message, path + ".");
  };
  ofMessage(root, "");
  return out;
}

const b64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const decoder = new TextDecoder();

/** The BODY[...] item of a FETCH response, decoded as UTF-8 (lossy, on both sides alike). */
function itemText(resp: string | null): string | null {
  if (resp === null) return null;
  for (const [k, v] of fetchItems(b64(resp))) {
    if (k.startsWith("BODY[")) return typeof v === "string" ? v : null;
  }
  return null;
}

Deno.test({
  name: "parseMessage() agrees with Dovecot on ENVELOPE, BODYSTRUCTURE and sections",
  ignore: !dovecotAvailable(),
}, async () => {
  const corpus = [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) =>
    n.endsWith(".eml")
  ).sort();
  const dir = await Deno.makeTempDir({ prefix: "postern-dovecot-" });
  // The corpus plus generated messages of random (well-formed) structure.
  const paths = corpus.map((f) => FIXTURES + f);
  const files = [...corpus];
  const rng = new Rng(20261127);
  for (let i = 0; i < GENERATED; i++) {
    const name = `gen-${String(i).padStart(2, "0")}.eml`;
    await Deno.writeTextFile(`${dir}/${name}`, message(rng));
    paths.push(`${dir}/${name}`);
    files.push(name);
  }
  const raws = paths.map((p) => Deno.readFileSync(p));
  const trees = raws.map(parseMessage);
  const pki = await makeOpensslPki();
  const server = await pki.server("ec256");
  const dovecot = await startDovecot({
    user: "u",
    password: "pass",
    certificatePath: server.certPath,
    keyPath: server.keyPath,
    maxConnections: 1,
  });
  let dump: {
    main: string;
    sections: Record<string, Record<string, string | null>>;
    specs: Record<string, string | null>;
  }[];
  try {
    const py = new Deno.Command("python3", {
      args: [SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = py.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({
      port: dovecot.port,
      cafile: pki.ca.certPath,
      messages: files.map((_, i) => ({
        file: paths[i]!,
        sections: sectionPaths(trees[i]!),
        specs: extraSpecs(trees[i]!),
      })),
    })));
    await w.close();
    const out = await py.output();
    assert.equal(out.code, 0, decoder.decode(out.stderr));
    dump = JSON.parse(decoder.decode(out.stdout));
  } finally {
    await dovecot.stop();
    await pki.remove();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  const found: { file: string; item: string; ours: unknown; theirs: unknown }[] = [];
  const dovecotSizeBugs: string[] = [];
  const check = (file: string, item: string, ours: unknown, theirs: unknown): void => {
    try {
      assert.deepEqual(ours, theirs);
    } catch {
      found.push({ file, item, ours, theirs });
    }
  };
  files.forEach((file, i) => {
    const raw = raws[i]!;
    const tree = trees[i]!;
    const d = dump[i]!;
    const items = fetchItems(b64(d.main));
    check(file, "envelope", readSexp(envelope(tree)), items.get("ENVELOPE"));
    check(file, "bodystructure", readSexp(bodyStructure(tree, true)), items.get("BODYSTRUCTURE"));
    check(file, "body", readSexp(bodyStructure(tree, false)), items.get("BODY"));
    for (const [sec, r] of Object.entries(d.sections)) {
      const mime = extractSection(raw, tree, parseSectionSpec(sec + ".MIME")!);
      check(file, `mime:${sec}`, mime && decoder.decode(mime), itemText(r.mime!));
      const body = extractSection(raw, tree, parseSectionSpec(sec)!);
      check(file, `section:${sec}`, body && decoder.decode(body), itemText(r.body!));
      // BINARY of a multipart or message part: Dovecot rewrites the nested part headers in
      // its output, which we do not (we only decode the leaf bodies in place); compare leaves.
      const path = sec.split(".").map(Number);
      if (!isLeaf(tree, path)) continue;
      const bin = extractBinary(raw, tree, path);
      const ourSize = bin === null ? null : bin.ok ? String(bin.bytes.length) : "UNKNOWN-CTE";
      const theirBytes = r.binsize === null ? null : fetchItems(b64(r.binsize!));
      let theirSize = theirBytes === null ? "UNKNOWN-CTE" : theirBytes.values().next().value;
      const theirLength = binaryLength(r.binary ?? null);
      if (typeof theirSize === "string" && theirLength !== null && theirSize !== theirLength) {
        // Dovecot 2.3 bug: BINARY.SIZE disagrees with its own BINARY[] answer (seen for binary
        // content with CR/LF octets, a quoted-printable soft line break, and NO [UNKNOWN-CTE]
        // for a plain part when a sibling has an unknown encoding). The octets it actually
        // sends are the truth.
        dovecotSizeBugs.push(`${file} ${sec}: BINARY.SIZE ${theirSize}, BINARY[] ${theirLength}`);
        theirSize = theirLength;
      }
      check(file, `binsize:${sec}`, ourSize, theirSize ?? null);
    }
    for (const [spec, r] of Object.entries(d.specs)) {
      const ours = extractSection(raw, tree, parseSectionSpec(spec)!);
      check(file, `spec:${spec}`, ours && decoder.decode(ours), bracketItem(r));
    }
  });
  const key = (x: { file: string; item: string }): string =>
    `${x.file.replace(/\.eml$/, "")} ${x.item}`;
  const expected = new Set(DIFFERENCES.map((d) => `${d.file} ${d.item}`));
  const unexpected = found.filter((f) => ![...expected].some((e) => key(f).startsWith(e)));
  const stale = DIFFERENCES.filter((d) =>
    !found.some((f) => key(f).startsWith(`${d.file} ${d.item}`))
  );
  if (unexpected.length > 0) {
    for (const u of unexpected) {
      console.log(
        `${u.file} ${u.item}\n  ours:   ${JSON.stringify(u.ours)}\n  theirs: ${
          JSON.stringify(u.theirs)
        }`,
      );
    }
  }
  if (dovecotSizeBugs.length > 0) {
    console.log(
      `Dovecot BINARY.SIZE inconsistencies (compared with BINARY[] instead):\n  ` +
        dovecotSizeBugs.join("\n  "),
    );
  }
  assert.deepEqual(unexpected.map(key), []);
  assert.deepEqual(stale.map((d) => `${d.file} ${d.item}`), []);
  // Sanity: the comparison covered the whole corpus.
  assert.ok(corpus.length >= 60);
  assert.equal(dump.length, corpus.length + GENERATED);
});

export type { Sexp };
