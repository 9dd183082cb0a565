// The code blocks of the docs that tests run as written: each is marked
// `<!-- snippet: KIND -->` on the line before its fence. KIND says how it
// runs (node, browser-module, page, ...); see the tests that read them.
import fs from 'node:fs';

/** The code of every block marked `<!-- snippet: KIND -->` in `file`, in order. */
export function snippets(file, kind) {
  const text = fs.readFileSync(file, 'utf8');
  const re = new RegExp(`<!-- snippet: ${kind} -->\\s*\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``, 'g');
  return [...text.matchAll(re)].map((m) => m[1]);
}
