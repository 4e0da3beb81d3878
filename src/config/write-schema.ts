/** `npm run schema`: writes mirror.config.schema.json from src/config/schema.ts. */
import { writeFileSync } from 'node:fs';
import { fileSchemaText } from './schema.js';

const target = new URL('../../mirror.config.schema.json', import.meta.url);
writeFileSync(target, fileSchemaText());
console.log(`wrote ${target.pathname}`);
