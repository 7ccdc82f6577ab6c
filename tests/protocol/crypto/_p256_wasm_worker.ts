/// <reference lib="deno.worker" />
/** Signs one digest with the WebAssembly P-256 core inside a Worker (p256_wasm_test.ts). */
import { p256WasmSigner } from "../../../protocol/crypto/p256_wasm/mod.ts";

self.onmessage = (event: MessageEvent<{ d: Uint8Array; digest: Uint8Array }>) => {
  self.postMessage(p256WasmSigner()!.sign(event.data.d, event.data.digest));
};
