/**
 * The line-echo diagnostic service: every byte received is sent back, and a line reading `QUIT`
 * ends the session with a clean close. Used to try the TLS layer with `openssl s_client` and by
 * the interoperability tests and the benchmark.
 */
import type { ByteChannel } from "./channel.ts";

const QUIT = [0x51, 0x55, 0x49, 0x54]; // "QUIT"
const LF = 0x0a;
const CR = 0x0d;

/** Echoes until the peer closes or sends a `QUIT` line. */
export async function runEcho(channel: ByteChannel): Promise<void> {
  // Only the first bytes of the current line matter for spotting QUIT.
  let lineLength = 0;
  let lineMatches = true;
  while (true) {
    const data = await channel.read();
    if (data === null) break;
    await channel.write(data);
    for (const byte of data) {
      if (byte === LF) {
        if (lineMatches && lineLength === QUIT.length) {
          await channel.close();
          return;
        }
        lineLength = 0;
        lineMatches = true;
      } else if (byte !== CR) {
        lineMatches &&= lineLength < QUIT.length && QUIT[lineLength] === byte;
        lineLength++;
      }
    }
  }
  await channel.close();
}
