/**
 * Runs `runAttackers` in a worker thread, so that the attackers' own work (TLS in JavaScript,
 * certificate building) never delays the honest client's event loop in the main thread. The
 * first message prepares the attack; the second runs it until its deadline.
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
      const { target, connections, kinds } = request;
      prepared = { target, connections, kinds, material: prepareAttack(target) };
      worker.postMessage({ ok: true });
      return;
    }
    if (prepared === null) throw new Error("Attack not prepared");
    const { target, connections, kinds, material } = prepared;
    const result = await runAttackers(target, connections, request.deadline, kinds, material);
    worker.postMessage({ ok: true, result });
  } catch (error) {
    worker.postMessage({ ok: false, error: String(error) });
  }
};
