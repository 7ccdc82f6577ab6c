import { makeOpensslPki } from "../tests/_support/openssl_pki.ts";
import { startNativeEcho } from "./tls_bench.ts";
const pki = await makeOpensslPki();
const leaf = await pki.server("ec256");
const native = startNativeEcho(leaf.certPem + pki.ca.certPem, leaf.keyPem);
const script = new URL("./_tls13_resume_client.ts", import.meta.url).pathname;
const out = await new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", script, String(native.port), "resumed", "1", "1"],
  stdout: "piped",
  stderr: "piped",
}).output();
console.log(new TextDecoder().decode(out.stdout), new TextDecoder().decode(out.stderr).slice(-500));
native.close();
Deno.removeSync(pki.dir, { recursive: true });
