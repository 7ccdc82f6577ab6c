/**
 * Runs `runAttackers` in a worker thread, so that the attackers' own work (TLS in JavaScript,
 * certificate building) never delays the honest client's event loop in the main thread. The
 * first message prepares the attack; the second runs it until its deadline.
 *
 * With `nice` above 0, the prepare step lowers this thread's CPU priority (Linux: `renice` on
 * its thread id): a remote attacker does not share the server's cores, and on a 2-core machine
 * the attackers' own CPU would otherwise decide how long the server waits for a core.
 */
import {
  type AttackMaterial,
  type HostileKind,
  type HostileTarget,
  prepareAttack,
  runAttackers,
} from "./hostile_load.ts";

type Request =
  | {
    readonly kind: "prepare";
    readonly target: HostileTarget;
    readonly connections: number;
    readonly kinds: readonly HostileKind[];
    readonly nice: number;
  }
  | { readonly kind: "run"; readonly deadline: number };

const worker = self as unknown as {
  onmessage: ((e: MessageEvent<Request>) => void) | null;
  postMessage(message: unknown): void;
};

let prepared:
  | {
    target: HostileTarget;
    connections: number;
    kinds: readonly HostileKind[];
    material: AttackMaterial;
  }
  | null = null;

worker.onmessage = async (e) => {
  const request = e.data;
  try {
    if (request.kind === "prepare") {
      const { target, connections, kinds, nice } = request;
      const thread = nice > 0 ? await lowerThreadPriority(nice) : null;
      prepared = { target, connections, kinds, material: prepareAttack(target) };
      worker.postMessage({ ok: true, result: thread });
      return;
    }
    if (prepared === null) throw new Error("Attack not prepared");
    const { target, connections, kinds, material } = prepared;
    const before = threadStat(ownThread());
    const result = await runAttackers(target, connections, request.deadline, kinds, material);
    const cpuSeconds = threadStat(ownThread()).cpuSeconds - before.cpuSeconds;
    worker.postMessage({ ok: true, result: { ...result, cpuSeconds } });
  } catch (error) {
    worker.postMessage({ ok: false, error: String(error) });
  }
};

/** This thread as `/proc/<pid>/task/<tid>` names it. */
function ownThread(): { pid: number; tid: number } {
  const [pid, , tid] = Deno.readLinkSync("/proc/thread-self").split("/");
  return { pid: Number(pid), tid: Number(tid) };
}

/** A thread's nice value and CPU time (user + system) so far, from its `stat` file. */
function threadStat(t: { pid: number; tid: number }): { nice: number; cpuSeconds: number } {
  const text = Deno.readTextFileSync(`/proc/${t.pid}/task/${t.tid}/stat`);
  // Fields after the command name (which may hold spaces), counted from field 3 (state).
  const fields = text.slice(text.lastIndexOf(") ") + 2).split(" ");
  return {
    nice: Number(fields[16]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
  };
}

/**
 * Sets this thread's nice value to `nice` (`renice -p` on its thread id; raising it needs no
 * privilege) and returns the thread with the nice value its `stat` file then shows.
 */
async function lowerThreadPriority(
  nice: number,
): Promise<{ pid: number; tid: number; nice: number }> {
  const thread = ownThread();
  const out = await new Deno.Command("renice", {
    args: ["-n", String(nice), "-p", String(thread.tid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`renice ${thread.tid}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return { ...thread, nice: threadStat(thread).nice };
}
