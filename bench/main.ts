/**
 * `deno task bench`: every benchmark that compares Postern with a reference measured in the same
 * run. Figures are printed, never asserted. `--quick` shortens every section.
 */
import { makeOpensslPki } from "../tests/_support/openssl_pki.ts";
import { benchTls } from "./tls_bench.ts";

const quick = Deno.args.includes("--quick");

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

function row(name: string, ours: number, reference: number, unit: string): string {
  return `${name.padEnd(34)} ${ours.toFixed(1).padStart(9)} ${unit.padEnd(6)} ${
    reference.toFixed(1).padStart(9)
  } ${unit.padEnd(6)} ${ratio(ours, reference).padStart(7)}`;
}

const pki = await makeOpensslPki();
try {
  console.log(`Postern benchmarks (${quick ? "quick" : "full"}), ${new Date().toISOString()}`);
  console.log(
    `${"".padEnd(34)} ${"Postern".padStart(16)} ${"reference".padStart(16)} ${"ratio".padStart(7)}`,
  );
  const tls = await benchTls(
    pki,
    quick ? { handshakes: 50, megabytes: 16 } : { handshakes: 300, megabytes: 64 },
  );
  console.log(
    row(
      "TLS full handshakes (P-256 cert)",
      tls.ours.handshakesPerSecond,
      tls.native.handshakesPerSecond,
      "hs/s",
    ),
  );
  console.log(row("TLS bulk echo, one way", tls.ours.bulkMBps, tls.native.bulkMBps, "MB/s"));
  console.log("reference: Deno.listenTls (rustls) with the same certificate and client");
} finally {
  await pki.remove();
}
