/**
 * A one-line progress bar on stderr for long-running commands. It draws only when stderr is a
 * terminal, only once the work has taken longer than a moment, and at most ten times a second.
 */

const encoder = new TextEncoder();
const WIDTH = 30;
const FIRST_DRAW_MS = 500;
const REDRAW_MS = 100;

export class ProgressBar {
  readonly #label: string;
  readonly #enabled: boolean;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #started: number;
  #lastDraw = 0;
  #drawn = false;

  constructor(
    label: string,
    options: { enabled?: boolean; write?: (text: string) => void; now?: () => number } = {},
  ) {
    this.#label = label;
    this.#enabled = options.enabled ?? isTerminal();
    this.#write = options.write ?? writeStderr;
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
  }

  /** Reports `done` of `total` units, with an optional detail such as "12/40 messages". */
  update(done: number, total: number, detail = ""): void {
    if (!this.#enabled) return;
    const now = this.#now();
    if (now - this.#started < FIRST_DRAW_MS || now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    this.#drawn = true;
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(fraction * WIDTH);
    const bar = "#".repeat(filled) + "-".repeat(WIDTH - filled);
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    this.#write(`\r\x1b[2K${this.#label} [${bar}] ${percent}${detail ? ` ${detail}` : ""}`);
  }

  /** Clears the bar so that the next line starts clean. */
  finish(): void {
    if (this.#drawn) this.#write("\r\x1b[2K");
    this.#drawn = false;
  }
}

function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

function writeStderr(text: string): void {
  try {
    let bytes = encoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
  } catch {
    // Progress output is best effort.
  }
}
