/** The clang command line of the P-256 core (build.ts and the rebuild test share it). */
export const P256_CLANG_FLAGS: readonly string[] = [
  "--target=wasm32",
  "-O3",
  "-mbulk-memory",
  "-msimd128",
  "-nostdlib",
  "-ffreestanding",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-Wl,--no-entry",
  "-Wl,--strip-all",
];

/** Base64 in 96-character string literals joined by `+`, one per line. */
export function encodeBase64Chunked(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const text = btoa(binary);
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 96) lines.push(`  "${text.slice(i, i + 96)}"`);
  return lines.join(" +\n");
}
