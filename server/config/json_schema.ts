/**
 * The JSON Schema of config.yaml, derived from the settings schema, so that editors with a
 * YAML language server complete and check the file as it is typed. `deno task config-schema`
 * writes it to config.schema.json; a test keeps the committed file up to date.
 */
import { type JsonSchema, toJsonSchema } from "@valibot/to-json-schema";
import { isMap, isScalar, type Pair, parseDocument } from "yaml";
import { fileSchema } from "./mod.ts";
import { DESCRIPTIONS, JSON_OVERRIDES } from "./_schema.ts";

/** Where the schema is published, relative to the repository root. */
export const SCHEMA_FILE = "config.schema.json";

/**
 * The JSON Schema (draft-07) of the configuration file. Each setting's description is the
 * comment above it in `example` (config.example.yaml), so the file and the editor's hover say
 * the same.
 */
export function configJsonSchema(example: string): JsonSchema {
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
  describeFromComments(schema as SchemaNode, parseDocument(example).contents);
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "Postern configuration",
    ...schema,
  };
}

/** The text of config.schema.json, from the text of config.example.yaml. */
export function configJsonSchemaText(example: string): string {
  return JSON.stringify(configJsonSchema(example), null, 2) + "\n";
}

type SchemaNode = { properties?: Record<string, SchemaNode>; description?: string };

/** Copies the comment above each key of `node` into the description of its property. */
function describeFromComments(schema: SchemaNode, node: unknown): void {
  if (!isMap(node)) return;
  const keys = new Set(Object.keys(schema.properties ?? {}));
  (node.items as Pair<unknown, unknown>[]).forEach((pair, index) => {
    if (!isScalar(pair.key) || typeof pair.key.value !== "string") return;
    const property = schema.properties?.[pair.key.value];
    if (property === undefined) return;
    // The comment above a mapping's first key belongs to the mapping in the YAML tree.
    const comment = pair.key.commentBefore ?? (index === 0 ? node.commentBefore : undefined);
    const text = lastParagraph(comment ?? "", keys);
    if (text !== "") {
      // A duration's minimum is added unless the comment states it.
      const rule = property.description;
      const minimum = rule?.startsWith("At least") && !text.includes("at least");
      property.description = minimum ? `${text} (${rule!.toLowerCase()})` : text;
    }
    describeFromComments(property, pair.value);
  });
}

/**
 * The prose right above a key: the last lines of its comment, up to a blank line or a
 * commented-out setting (`# crl: [certs/ca.crl]`), joined into one paragraph.
 */
function lastParagraph(comment: string, keys: ReadonlySet<string>): string {
  const lines = comment.split("\n");
  const kept: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.replace(/^ /, "");
    const setting = /^([a-z_]+):(\s|$)/.exec(line);
    if (line.trim() === "" || /^(\s+|- )/.test(line) || (setting && keys.has(setting[1]!))) break;
    kept.unshift(line.trim());
  }
  return kept.join(" ");
}

if (import.meta.main) {
  const root = new URL("../../", import.meta.url);
  const example = Deno.readTextFileSync(new URL("config.example.yaml", root));
  const target = new URL(SCHEMA_FILE, root);
  Deno.writeTextFileSync(target, configJsonSchemaText(example));
  console.log(`Wrote ${target.pathname}`);
}
