// The package's modules are the ones every instance serves from web/: one
// copy in the repository. `npm pack` (and `npm publish`) run this first
// (the `prepack` script) to copy them here; the copies are not committed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, '../../web');
// Through a temporary name and a rename, so that a pack running alongside
// (two tests at once) never reads a half-written copy.
for (const file of ['sigstream.js', 'sigstream.d.ts', 'negotiation.js', 'negotiation.d.ts']) {
  const temporary = path.join(here, `.${file}.${process.pid}`);
  fs.copyFileSync(path.join(web, file), temporary);
  fs.renameSync(temporary, path.join(here, file));
}
