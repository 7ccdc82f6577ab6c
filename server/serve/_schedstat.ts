/**
 * The calling thread's scheduler figures from `/proc/thread-self/schedstat`, for the
 * benchmark-only probes: the file is opened once per thread and read again from its start, which
 * costs two system calls and no allocation beyond the result.
 */

let file: Deno.FsFile | null | undefined;
const buffer = new Uint8Array(96);

/** Time on a CPU and time runnable but waiting for one so far, in ms (null off Linux). */
export function schedstat(): { cpuMs: number; waitMs: number } | null {
  if (file === undefined) {
    try {
      file = Deno.openSync("/proc/thread-self/schedstat");
    } catch {
      file = null;
    }
  }
  if (file === null) return null;
  try {
    file.seekSync(0, Deno.SeekMode.Start);
    const n = file.readSync(buffer) ?? 0;
    // "<ns on cpu> <ns waiting> <timeslices>\n"
    let i = 0;
    let cpu = 0;
    for (; i < n && buffer[i] !== 0x20; i++) cpu = cpu * 10 + buffer[i]! - 0x30;
    let wait = 0;
    for (i++; i < n && buffer[i]! >= 0x30 && buffer[i]! <= 0x39; i++) {
      wait = wait * 10 + buffer[i]! - 0x30;
    }
    return { cpuMs: cpu / 1e6, waitMs: wait / 1e6 };
  } catch {
    return null;
  }
}
