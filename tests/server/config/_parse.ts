/** How the config tests read a configuration text: as /etc/postern/config.yaml, files unchecked. */
import assert from "node:assert/strict";
import { type Config, ConfigError, parseConfig } from "../../../server/config/mod.ts";

export function parse(text: string): Config {
  return parseConfig(text, "/etc/postern/config.yaml", {
    checkFiles: false,
    displayName: "config.yaml",
  });
}

/** The lines of the ConfigError that `text` gets; fails when it parses. */
export function errorsOf(text: string): string[] {
  try {
    parse(text);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.message.split("\n");
  }
  assert.fail("expected a ConfigError");
}
