/**
 * Headless Chromium for end-to-end tests, driven through Debian's chromedriver with the W3C
 * WebDriver HTTP protocol and plain `fetch` (no dependency). chromedriver comes in the same
 * Debian source as chromium, so the two versions always match; every request is bounded, and
 * every wait polls with a deadline.
 */
import { join } from "node:path";
import { freePort } from "./ports.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMEDRIVER = "/usr/bin/chromedriver";

/** The W3C element reference key. */
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

/**
 * The flags this machine needs: no sandbox (root), no GPU, and nothing that reaches beyond
 * 127.0.0.1 (QUIC, component updates, sync, background fetches).
 */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--window-size=1400,900",
];

/**
 * Why headless Chromium cannot run here, or null when it can: the binaries are missing, or a
 * page cannot be rendered (checked with `--dump-dom`, bounded by 20 s).
 */
export async function chromiumUnavailable(): Promise<string | null> {
  for (const bin of [CHROMIUM, CHROMEDRIVER]) {
    try {
      Deno.statSync(bin);
    } catch {
      return `${bin} is not installed (Debian packages chromium and chromium-driver)`;
    }
  }
  const profile = await Deno.makeTempDir({ prefix: "postern-chromium-probe-" });
  try {
    const child = new Deno.Command(CHROMIUM, {
      args: [...CHROMIUM_ARGS, `--user-data-dir=${profile}`, "--dump-dom", "data:text/html,<p>ok"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => killQuietly(child.pid), 20_000);
    const out = await child.output();
    clearTimeout(timer);
    const dom = new TextDecoder().decode(out.stdout);
    if (!out.success || !dom.includes("<p>ok</p>")) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
      return `chromium did not start (exit ${out.code}): ${err}`;
    }
    return null;
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

function killQuietly(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** A WebDriver error answer, with its W3C error code. */
export class WebDriverError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message.split("\n")[0]}`);
    this.name = "WebDriverError";
  }
}

/** A page element found by CSS selector. */
export interface Element {
  readonly id: string;
  readonly selector: string;
}

/** One browser: a chromedriver process and its session with a fresh Chromium profile. */
export class Browser {
  readonly #driver: Deno.ChildProcess;
  readonly #base: string;
  readonly #profile: string;
  #stderr = "";

  private constructor(driver: Deno.ChildProcess, base: string, profile: string) {
    this.#driver = driver;
    this.#base = base;
    this.#profile = profile;
    driver.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (t) => void (this.#stderr = (this.#stderr + t).slice(-4096)) }),
    ).catch(() => {});
  }

  /** Starts chromedriver on a free port and opens a session (a new headless Chromium). */
  static async start(profileDir: string): Promise<Browser> {
    const port = freePort();
    const driver = new Deno.Command(CHROMEDRIVER, {
      args: [`--port=${port}`, "--allowed-ips=127.0.0.1"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const browser = new Browser(driver, `http://127.0.0.1:${port}`, profileDir);
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ready = await browser.#request("GET", "/status").then(
          (v) => (v as { ready?: boolean }).ready === true,
          () => false,
        );
        if (ready) break;
        if (Date.now() > deadline) {
          throw new Error(`chromedriver did not start: ${browser.#stderr}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const session = await browser.#request("POST", "/session", {
        capabilities: {
          alwaysMatch: {
            browserName: "chrome",
            pageLoadStrategy: "normal",
            timeouts: { pageLoad: 20_000, script: 10_000, implicit: 0 },
            "goog:chromeOptions": {
              binary: CHROMIUM,
              args: [...CHROMIUM_ARGS, `--user-data-dir=${profileDir}`],
            },
          },
        },
      }) as { sessionId: string };
      browser.#session = `/session/${session.sessionId}`;
      return browser;
    } catch (e) {
      await browser.close();
      throw e;
    }
  }

  #session = "";

  async #request(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(this.#base + path, {
      method,
      ...(body === undefined ? {} : {
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      }),
      signal: AbortSignal.timeout(30_000),
    });
    const json = await response.json() as { value: unknown };
    const value = json.value as { error?: string; message?: string } | null;
    if (!response.ok || (value && typeof value === "object" && "error" in value)) {
      throw new WebDriverError(value?.error ?? String(response.status), value?.message ?? "");
    }
    return json.value;
  }

  #command(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.#request(method, this.#session + path, body);
  }

  async navigate(url: string): Promise<void> {
    await this.#command("POST", "/url", { url });
  }

  /** Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value. */
  execute<T>(script: string, ...args: unknown[]): Promise<T> {
    return this.#command("POST", "/execute/sync", { script, args }) as Promise<T>;
  }

  /**
   * Runs `script` (a function body) in the page and waits, bounded by the session's script
   * timeout (10 s), until it calls its last argument with the result.
   */
  executeAsync<T>(script: string, ...args: unknown[]): Promise<T> {
    return this.#command("POST", "/execute/async", { script, args }) as Promise<T>;
  }

  /** All elements matching `selector` now (in the current frame). */
  async findAll(selector: string): Promise<Element[]> {
    const found = await this.#command("POST", "/elements", {
      using: "css selector",
      value: selector,
    }) as Record<string, string>[];
    return found.map((f) => ({ id: f[ELEMENT]!, selector }));
  }

  /** Waits until an element matching `selector` is displayed, and returns it. */
  async waitFor(selector: string, timeoutMs = 15_000): Promise<Element> {
    let found: Element | undefined;
    await this.waitUntil(`${selector} is displayed`, async () => {
      for (const e of await this.findAll(selector)) {
        if (await this.#command("GET", `/element/${e.id}/displayed`).catch(() => false)) {
          found = e;
          return true;
        }
      }
      return false;
    }, timeoutMs);
    return found!;
  }

  /** Polls `check` every 100 ms until it is true; throws naming `what` after `timeoutMs`. */
  async waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    for (;;) {
      try {
        if (await check()) return;
      } catch (e) {
        // A stale element or a page in the middle of loading; try again.
        last = e;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Timed out after ${timeoutMs} ms waiting until ${what}` +
            (last ? ` (last error: ${last})` : ""),
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async click(element: Element): Promise<void> {
    await this.#command("POST", `/element/${element.id}/click`, {});
  }

  async type(element: Element, text: string): Promise<void> {
    await this.#command("POST", `/element/${element.id}/clear`, {});
    await this.#command("POST", `/element/${element.id}/value`, { text });
  }

  /** The rendered text of an element. */
  async text(element: Element): Promise<string> {
    return await this.#command("GET", `/element/${element.id}/text`) as string;
  }

  async attribute(element: Element, name: string): Promise<string | null> {
    return await this.#command("GET", `/element/${element.id}/attribute/${name}`) as
      | string
      | null;
  }

  /** Switches into the iframe `element`, or back to the top document with null. */
  async frame(element: Element | null): Promise<void> {
    await this.#command("POST", "/frame", {
      id: element === null ? null : { [ELEMENT]: element.id },
    });
  }

  /** Saves a PNG of the viewport to `path`. */
  async screenshot(path: string): Promise<void> {
    const b64 = await this.#command("GET", "/screenshot") as string;
    await Deno.writeFile(path, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  }

  /**
   * Ends the session (Chromium quits), stops chromedriver, and kills any Chromium process
   * still running on this browser's profile directory.
   */
  async close(): Promise<void> {
    if (this.#session) {
      await this.#request("DELETE", this.#session).catch(() => {});
      this.#session = "";
    }
    killQuietly(this.#driver.pid);
    await this.#driver.status;
    for (const pid of processesUsing(this.#profile)) killQuietly(pid);
  }
}

/** Ids of processes whose command line mentions `path` (Chromium's profile directory). */
function processesUsing(path: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(join("/proc", entry.name, "cmdline"));
      if (cmdline.includes(`--user-data-dir=${path}`)) pids.push(Number(entry.name));
    } catch {
      // Exited meanwhile.
    }
  }
  return pids;
}
