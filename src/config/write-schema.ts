/** `npm run schema`: writes mirror.config.schema.json and its compiled validator from src/config/schema.ts. */
import { writeFileSync } from 'node:fs';
import { fileSchemaText } from './schema.js';
import { validatorModuleText } from './validator-code.js';

for (const [relative, text] of [['../../mirror.config.schema.json', fileSchemaText()], ['./config-validator.generated.ts', validatorModuleText()]] as const) {
  const target = new URL(relative, import.meta.url);
  writeFileSync(target, text);
  console.log(`wrote ${target.pathname}`);
}
