import assert from "node:assert/strict";
import { type OptionSpec, parseArgs, UsageError } from "../../../server/cli/args.ts";

const OPTIONS: Record<string, OptionSpec> = {
  config: { type: "string", short: "c", value: "FILE", description: "config" },
  help: { type: "boolean", short: "h", description: "help" },
  p12: { type: "boolean", description: "p12" },
};

Deno.test("parseArgs() reads long, inline, short and boolean options and positionals", () => {
  const parsed = parseArgs(
    ["alice", "--config", "a.yaml", "--p12", "-c", "b.yaml", "--config=c.yaml", "--", "--x"],
    "certs issue-client",
    OPTIONS,
    [{ name: "NAME" }, { name: "EXTRA", optional: true }],
  );
  assert.deepEqual(parsed, {
    values: { config: "c.yaml", p12: true },
    positionals: ["alice", "--x"],
    lists: { config: ["a.yaml", "b.yaml", "c.yaml"] },
  });
  assert.deepEqual(parseArgs(["-cfile"], "x", OPTIONS, []).values, { config: "file" });
  assert.deepEqual(parseArgs(["--config", "-", "-"], "x", OPTIONS, [{ name: "F" }]), {
    values: { config: "-" },
    positionals: ["-"],
    lists: { config: ["-"] },
  });
});

Deno.test("parseArgs() turns every mistake into a UsageError naming the command", () => {
  const table: [string[], string][] = [
    [["--confg", "x"], 'unknown option "--confg" for serve (did you mean "--config"?)'],
    [["-x"], 'unknown option "-x" for serve'],
    [["--config"], 'option "--config" needs a value (FILE)'],
    [["--config", "--p12"], 'option "--config" needs a value (FILE)'],
    [["--p12=yes"], 'option "--p12" takes no value'],
    [["extra"], 'unexpected argument "extra" for serve'],
    [["-hx"], 'unknown option "-x" for serve'],
  ];
  for (const [args, message] of table) {
    assert.throws(() => parseArgs(args, "serve", OPTIONS, []), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(error.name, "UsageError");
      assert.equal(error.message, message);
      assert.equal(error.command, "serve");
      return true;
    });
  }
  assert.throws(
    () => parseArgs([], "user add", OPTIONS, [{ name: "NAME" }]),
    /user add needs NAME/,
  );
});

Deno.test("parseArgs() lets --help through without the required positionals", () => {
  const parsed = parseArgs(["--help"], "user add", OPTIONS, [{ name: "NAME" }]);
  assert.equal(parsed.values.help, true);
});
