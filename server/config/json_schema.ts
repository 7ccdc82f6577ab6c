/**
 * The JSON Schema of config.yaml, derived from the settings schema, so that editors with a
 * YAML language server complete and check the file as it is typed. `deno task config-schema`
 * writes it to config.schema.json; a test keeps the committed file up to date.
 */
import { type JsonSchema, toJsonSchema } from "@valibot/to-json-schema";
import { fileSchema } from "./mod.ts";
import { DESCRIPTIONS, JSON_OVERRIDES } from "./_schema.ts";

/** Where the schema is published, relative to the repository root. */
export const SCHEMA_FILE = "config.schema.json";

/** The JSON Schema (draft-07) of the configuration file. */
export function configJsonSchema(): JsonSchema {
  const schema = toJsonSchema(fileSchema, {
    typeMode: "input",
    // Checks that need code (addresses) stay with the server; editors still see the type.
    ignoreActions: ["check"],
    overrideSchema: ({ valibotSchema, jsonSchema }) => {
      const own = JSON_OVERRIDES.get(valibotSchema);
      const description = DESCRIPTIONS.get(valibotSchema);
      if (own === undefined && description === undefined) return undefined;
      return { ...(own ?? jsonSchema), ...(description === undefined ? {} : { description }) };
    },
  });
  return { ...schema, title: "Postern configuration" };
}

/** The text of config.schema.json. */
export function configJsonSchemaText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + "\n";
}

if (import.meta.main) {
  const target = new URL(`../../${SCHEMA_FILE}`, import.meta.url);
  Deno.writeTextFileSync(target, configJsonSchemaText());
  console.log(`Wrote ${target.pathname}`);
}
