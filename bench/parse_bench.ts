/**
 * Parser costs on hostile input, each next to a reference measured in the same run: a benign
 * message of the same length. A ratio far above 1 means a quadratic path. Also times the 20 MB
 * attachment and a backtracking-prone LIST pattern. Run alone with
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
import { bigAttachmentMessage } from "../tests/protocol/imap/mime/_big_message.ts";
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
  return worst;
}

if (import.meta.main) benchParse(Deno.args.includes("--quick"));
