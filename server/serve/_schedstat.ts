/**
 * The calling thread's scheduler figures from `/proc/thread-self/schedstat`, for the
 * benchmark-only probes: the file is opened once per thread and read again from its start, which
 * costs two system calls and no allocation beyond the result.
 *
 * The file's CPU time moves only at the scheduler's ticks while the thread runs (4 ms with this
 * kernel's 250 Hz: a 2 ms busy loop reads as 0 or 4 ms), so a tick's CPU time read from it can
 * be off by a whole tick either way. Where the process may load libraries (`--allow-ffi`, as
 * the benches run the server), the CPU time comes from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`
 * instead, exact to the microsecond (about 0.5 µs a call). The wait for a core is the file's in
 * either case: it only moves when the thread is switched in, so it is up to date then.
 */

let file: Deno.FsFile | null | undefined;
const buffer = new Uint8Array(96);

/** CLOCK_THREAD_CPUTIME_ID of Linux (include/uapi/linux/time.h). */
const CLOCK_THREAD_CPUTIME_ID = 3;

let threadClock: (() => number) | null | undefined;

/** The calling thread's exact CPU time in ms, through libc; null where FFI is not allowed. */
export function threadCpuMs(): number | null {
  threadClock ??= openThreadClock();
  return threadClock === null ? null : threadClock();
}

function openThreadClock(): (() => number) | null {
  try {
    if (Deno.build.os !== "linux") return null;
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const libc = Deno.dlopen("libc.so.6", {
      clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
    });
    const timespec = new BigInt64Array(2);
    const bytes = new Uint8Array(timespec.buffer);
    return () =>
      libc.symbols.clock_gettime(CLOCK_THREAD_CPUTIME_ID, bytes) === 0
        ? Number(timespec[0]) * 1e3 + Number(timespec[1]) / 1e6
        : NaN;
  } catch {
    return null;
  }
}

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
    return { cpuMs: threadCpuMs() ?? cpu / 1e6, waitMs: wait / 1e6 };
  } catch {
    return null;
  }
}
