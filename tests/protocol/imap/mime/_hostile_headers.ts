/**
 * Messages built to hit quadratic paths in header and structure parsing. The tests check that
 * each parses correctly; `bench/parse_bench.ts` times them.
 */
export const HOSTILE_MESSAGES: Readonly<Record<string, string>> = {
  "unterminated encoded words": "Subject: " + "=?a?q?".repeat(10000) + "\r\n\r\nx",
  "many encoded words": "Subject: " + "=?utf-8?q?a?= ".repeat(5000) + "\r\n\r\nx",
  "empty addresses": "To: " + "a, ".repeat(20000) + "\r\n\r\nx",
  "one long phrase": "To: " + "word ".repeat(13000) + "\r\n\r\nx",
  "open comments": "From: " + "(".repeat(30000) + "\r\n\r\nx",
  "quotes": "From: " + '"'.repeat(60000) + "\r\n\r\nx",
  "continuations": "Content-Type: text/plain" + "; a*1*=x".repeat(8000) + "\r\n\r\nx",
  "angles": "To: " + "<".repeat(60000) + "\r\n\r\nx",
  "group openers": "To: " + "g:".repeat(20000) + "\r\n\r\nx",
  "delimiters only": "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
    "--b\r\n".repeat(50000),
  "nested openers": "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n".repeat(2000),
  "folds": "Subject: x" + "\r\n y".repeat(50000) + "\r\n\r\nx",
};
