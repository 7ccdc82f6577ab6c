import assert from "node:assert/strict";
import { parseDocument } from "yaml";
import * as v from "valibot";
import { configJsonSchemaText, SCHEMA_FILE } from "../../../server/config/json_schema.ts";
import { fileSchema } from "../../../server/config/mod.ts";

const ROOT = new URL("../../../", import.meta.url);
const EXAMPLE = Deno.readTextFileSync(new URL("config.example.yaml", ROOT));

Deno.test("config.schema.json is the one the settings schema generates", () => {
  const committed = Deno.readTextFileSync(new URL(SCHEMA_FILE, ROOT));
  assert.equal(
    committed,
    configJsonSchemaText(EXAMPLE),
    "config.schema.json is stale: run `deno task config-schema`",
  );
});

Deno.test("config.example.yaml names the schema and passes the schema's validator", () => {
  const text = Deno.readTextFileSync(new URL("config.example.yaml", ROOT));
  assert.match(text.split("\n")[0]!, /^# yaml-language-server: \$schema=\.\/config\.schema\.json$/);
  const result = v.safeParse(fileSchema, parseDocument(text).toJS(), { abortEarly: false });
  assert.deepEqual(result.issues ?? [], []);
  assert.ok(result.success);
});

Deno.test("config.schema.json lists every section and closes each mapping", () => {
  const schema = JSON.parse(configJsonSchemaText(EXAMPLE));
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(Object.keys(schema.properties), Object.keys(fileSchema.entries));
  assert.equal(schema.properties.tls.properties.client_auth.default, "optional");
  assert.deepEqual(schema.properties.tls.properties.client_auth.enum, [
    "none",
    "optional",
    "required",
  ]);
  assert.equal(schema.properties.limits.properties.idle_timeout.default, "30m");
  // The comment above a setting in config.example.yaml is its description.
  assert.match(
    schema.properties.tls.properties.client_auth.description,
    /^Client certificates: none \(never asked\), optional/,
  );
});
