/**
 * Worker of `LegacyVerifierPool`: verifies one imported hash per message, so that the pure
 * JavaScript bcrypt and Argon2id and the synchronous SHA-crypt never stall the server's event
 * loop (bcrypt cost 10 holds it for about 100 ms at a time, Argon2id with 64 MiB for seconds).
 */
import { verifyLegacyPassword } from "../../mailstore/legacy_password.ts";

/** A request from the pool. */
export interface LegacyRequest {
  readonly id: number;
  readonly password: string;
  readonly encoded: string;
}

/** The answer to a request. */
export interface LegacyResponse {
  readonly id: number;
  readonly ok: boolean;
}

/** The worker's global scope, typed by hand: the checked libraries are those of the main thread. */
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<LegacyRequest>) => void) | null;
  postMessage(message: LegacyResponse): void;
};

scope.onmessage = async (e) => {
  const { id, password, encoded } = e.data;
  let ok = false;
  try {
    ok = await verifyLegacyPassword(password, encoded);
  } catch {
    ok = false;
  }
  scope.postMessage({ id, ok });
};
