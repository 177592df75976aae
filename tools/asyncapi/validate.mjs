// Validates an AsyncAPI document with the AsyncAPI project's parser: prints every error and
// warning and exits 1 if there is one (hints, such as "a newer AsyncAPI version exists", pass).
// Usage: node validate.mjs FILE
import { Parser } from '@asyncapi/parser';
import fs from 'node:fs';

const diagnostics = await new Parser().validate(fs.readFileSync(process.argv[2], 'utf8'));
// Severity: 0 error, 1 warning, 2 information, 3 hint.
const serious = diagnostics.filter((d) => d.severity <= 1);
for (const d of serious) {
  console.log(`${d.severity === 0 ? 'error' : 'warning'} ${d.code}: ${d.message} at ${d.path.join('/')}`);
}
console.log(`${serious.length} errors or warnings, ${diagnostics.length - serious.length} hints`);
process.exit(serious.length === 0 ? 0 : 1);
