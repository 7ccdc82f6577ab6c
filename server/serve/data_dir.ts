/**
 * The data folder and its database, with owner-only permissions whoever created them: the
 * folder ends up 0700 and `postern.db` (with its `-wal` and `-shm` files) 0600, even when an
 * earlier run, another tool or a looser umask made them readable to others.
 */
import { join } from "node:path";
import { openSqliteMailStore, type SqliteMailStore } from "../../mailstore/sqlite/mod.ts";

/** The database file under `data_dir`. */
export const DATABASE_FILE = "postern.db";

/** Creates `dir` if needed and makes it 0700 (mkdir's mode does not change an existing one). */
export async function prepareDataDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700);
}

/** Opens the store in `dir`, creating the folder and database with owner-only permissions. */
export async function openDataStore(dir: string): Promise<SqliteMailStore> {
  await prepareDataDir(dir);
  return await openSqliteMailStore(join(dir, DATABASE_FILE));
}

/**
 * Warns (through `warn`) about a private key or secret file that the group or others may read;
 * returns whether it did. A missing file is left to the code that reads it.
 */
export async function warnIfExposed(
  what: string,
  path: string,
  warn: (message: string, props: Record<string, unknown>) => void,
): Promise<boolean> {
  try {
    const mode = (await Deno.stat(path)).mode;
    if (mode === null || (mode & 0o077) === 0) return false;
    warn("{what} {path} is readable by group or others (mode {mode}); chmod 600 it", {
      what,
      path,
      mode: (mode & 0o777).toString(8).padStart(4, "0"),
    });
    return true;
  } catch {
    return false;
  }
}
