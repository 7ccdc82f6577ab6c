/**
 * A throwaway Roundcube (Debian's roundcube-core) under PHP's built-in web server: its own
 * configuration directory, SQLite database (from Roundcube's SQL schema), log and temp folders
 * in a temporary directory, talking to an IMAP server over implicit TLS with certificate
 * verification against a given CA. Nothing outside the temporary directory is written.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { freePort } from "./ports.ts";

/** Debian's layout: the code, its public document root, the defaults and the SQL schema. */
const ROUNDCUBE = {
  docroot: "/var/lib/roundcube/public_html",
  defaults: "/etc/roundcube/defaults.inc.php",
  schema: "/usr/share/roundcube/SQL/sqlite.initial.sql",
} as const;
const PHP = "/usr/bin/php";

/** Why Roundcube cannot run here, or null when it can. */
export async function roundcubeUnavailable(): Promise<string | null> {
  for (const path of [PHP, ...Object.values(ROUNDCUBE)]) {
    try {
      Deno.statSync(path);
    } catch {
      return `${path} is missing (Debian packages roundcube-core, roundcube-sqlite3, php-cli)`;
    }
  }
  const modules = await new Deno.Command(PHP, { args: ["-m"], stdout: "piped", stderr: "null" })
    .output();
  if (!/^pdo_sqlite$/m.test(new TextDecoder().decode(modules.stdout))) {
    return "PHP has no pdo_sqlite (Debian package php-sqlite3)";
  }
  return null;
}

export interface RoundcubeOptions {
  /** Implicit-TLS IMAP port on 127.0.0.1. */
  readonly imapPort: number;
  /** PEM file of the CA that signed the IMAP server's certificate. */
  readonly caPath: string;
  /** Extra `$config[...] = ...;` PHP lines. */
  readonly extraConfig?: string;
}

export interface RunningRoundcube {
  readonly url: string;
  readonly dir: string;
  /** Roundcube's IMAP conversation log (`imap_debug`), as written so far. */
  imapLog(): string;
  /** Roundcube's error log, as written so far. */
  errorLog(): string;
  stop(): Promise<void>;
}

function phpString(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/** Writes the configuration and database, then starts `php -S` and waits until it answers. */
export async function startRoundcube(options: RoundcubeOptions): Promise<RunningRoundcube> {
  const dir = await Deno.makeTempDir({ prefix: "postern-roundcube-" });
  const configDir = join(dir, "config");
  const logDir = join(dir, "logs");
  const tempDir = join(dir, "temp");
  for (const d of [configDir, logDir, tempDir]) await Deno.mkdir(d);
  await Deno.symlink(ROUNDCUBE.defaults, join(configDir, "defaults.inc.php"));

  const dbPath = join(dir, "roundcube.db");
  const db = new DatabaseSync(dbPath);
  db.exec(await Deno.readTextFile(ROUNDCUBE.schema));
  db.close();

  const desKey = [...crypto.getRandomValues(new Uint8Array(12))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.writeTextFile(
    join(configDir, "config.inc.php"),
    `<?php
$config = [];
$config['db_dsnw'] = ${phpString(`sqlite:///${dbPath}?mode=0600`)};
$config['imap_host'] = ${phpString(`ssl://127.0.0.1:${options.imapPort}`)};
$config['imap_conn_options'] = ['ssl' => [
  'verify_peer' => true,
  'verify_peer_name' => true,
  'allow_self_signed' => false,
  'cafile' => ${phpString(options.caPath)},
]];
$config['imap_timeout'] = 15;
$config['imap_debug'] = true;
$config['smtp_host'] = '';
$config['log_driver'] = 'file';
$config['log_dir'] = ${phpString(logDir)};
$config['temp_dir'] = ${phpString(tempDir)};
$config['des_key'] = ${phpString(desKey)};
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['language'] = 'en_US';
$config['enable_spellcheck'] = false;
$config['support_url'] = '';
$config['product_name'] = 'Roundcube';
${options.extraConfig ?? ""}
`,
  );

  const port = freePort();
  const child = new Deno.Command(PHP, {
    args: ["-S", `127.0.0.1:${port}`, "-t", ROUNDCUBE.docroot],
    cwd: dir,
    env: { ROUNDCUBE_CONFIG_DIR: configDir },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const draining = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (t) => void (stderr = (stderr + t).slice(-8192)) }),
  ).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
      async (r) => {
        await r.body?.cancel();
        return r.status === 200;
      },
      () => false,
    );
    if (ok) break;
    if (exited || Date.now() > deadline) {
      if (!exited) child.kill("SIGKILL");
      await status;
      throw new Error(`php -S did not serve Roundcube: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const readLog = (name: string) => {
    try {
      return Deno.readTextFileSync(join(logDir, name));
    } catch {
      return "";
    }
  };
  return {
    url,
    dir,
    imapLog: () => readLog("imap.log"),
    errorLog: () => readLog("errors.log"),
    async stop() {
      if (!exited) child.kill("SIGTERM");
      await status;
      await draining;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
