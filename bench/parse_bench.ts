/**
 * Parser costs on hostile input, each next to a reference measured in the same run: a benign
 * message of the same length. A ratio far above 1 means a quadratic path. Also times the 20 MB
 * attachment, a backtracking-prone LIST pattern, and X.509 path building among eight
 * cross-signed issuers of one name (stopped by its step budget). Run alone with
 * `deno run -A bench/parse_bench.ts` or through `deno task bench --only parse`.
 */
import { compilePattern } from "../protocol/imap/commands/list.ts";
import {
  envelope,
  extractBinary,
  extractSection,
  parseMessage,
  parseSectionSpec,
  summarize,
} from "../protocol/imap/mime/mod.ts";
import { validatePath } from "../protocol/x509/path.ts";
import { bigAttachmentMessage } from "../tests/protocol/imap/mime/_big_message.ts";
import { issue, key, NOW, provider, root } from "../tests/protocol/x509/_fixtures.ts";
import { HOSTILE_MESSAGES } from "../tests/protocol/imap/mime/_hostile_headers.ts";

/** Milliseconds per run of `work`, the median of `runs`. */
function time(work: () => void, runs = 5): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    work();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(runs / 2)]!;
}

function benign(length: number): Uint8Array {
  const head = "From: a@example.org\r\nSubject: plain\r\n\r\n";
  const line = "lorem ipsum dolor sit amet consectetur\r\n";
  return new TextEncoder().encode(head + line.repeat(Math.ceil(length / line.length)));
}

function parseAll(raw: Uint8Array): void {
  const root = parseMessage(raw);
  envelope(root);
  summarize(raw);
}

/** Prints one line per input and returns the worst hostile/benign ratio. */
export function benchParse(quick: boolean): number {
  const runs = quick ? 3 : 7;
  console.log(`${"".padEnd(30)} ${"hostile".padStart(10)} ${"benign".padStart(10)} ratio`);
  let worst = 0;
  for (const [name, text] of Object.entries(HOSTILE_MESSAGES)) {
    const raw = new TextEncoder().encode(text);
    const plain = benign(raw.length);
    const ours = time(() => parseAll(raw), runs);
    const reference = time(() => parseAll(plain), runs);
    worst = Math.max(worst, ours / reference);
    console.log(
      `${name.padEnd(30)} ${ours.toFixed(2).padStart(8)}ms ${reference.toFixed(2).padStart(8)}ms ` +
        `${(ours / reference).toFixed(1)}x`,
    );
  }
  const { raw } = bigAttachmentMessage(15 * 1024 * 1024);
  const root = parseMessage(raw);
  const parse = time(() => parseMessage(raw), quick ? 1 : 3);
  const section = time(() => extractSection(raw, root, parseSectionSpec("2")!), runs);
  const binary = time(() => extractBinary(raw, root, [2]), quick ? 1 : 3);
  console.log(
    `20 MB attachment (${raw.length} octets): parse ${parse.toFixed(0)} ms, BODY[2] ` +
      `${section.toFixed(3)} ms (zero-copy), BINARY[2] ${binary.toFixed(0)} ms`,
  );
  const hostile = compilePattern("*a".repeat(200) + "b");
  const plain = compilePattern("*b");
  const subject = "a".repeat(500);
  const ours = time(() => hostile.test(subject), runs);
  const reference = time(() => plain.test(subject), runs);
  console.log(
    `LIST pattern ("*a" x200 "b") ${ours.toFixed(3)} ms against "*b" ${reference.toFixed(3)} ms`,
  );
  benchPathSearch(runs);
  return worst;
}

/**
 * Path building that only the step budget stops (eight CAs of one name and key, all
 * cross-signed, none reaching the anchor), against validating an ordinary three-certificate
 * chain, signatures included.
 */
function benchPathSearch(runs: number): void {
  const options = { now: NOW, provider, requiredEku: "clientAuth" as const };
  const ca = root("CN=Root");
  const inter = issue("CN=Intermediate", ca, { key: key("P-256", 2), isCa: true });
  const leafSpec = { key: key("P-256", 3), extKeyUsage: ["clientAuth"] };
  const leaf = issue("CN=alice", inter, leafSpec);
  const k = key("P-256", 40);
  const seed = root("CN=Loop", k);
  const loops = Array.from(
    { length: 8 },
    (_, i) => issue("CN=Loop", seed, { key: k, isCa: true, serial: BigInt(i + 1) }).der,
  );
  const lost = issue("CN=x", seed, leafSpec).der;
  const hostile = time(() => {
    try {
      validatePath(lost, loops, [ca.der], { ...options, maxDepth: 10 });
    } catch {
      // "Path building gave up: too much work", as intended.
    }
  }, runs);
  const reference = time(() => validatePath(leaf.der, [inter.der], [ca.der], options), runs);
  console.log(
    `X.509 path search (8 cross-signed issuers) ${hostile.toFixed(2)} ms against a valid ` +
      `chain ${reference.toFixed(2)} ms (${(hostile / reference).toFixed(1)}x)`,
  );
}

if (import.meta.main) benchParse(Deno.args.includes("--quick"));
