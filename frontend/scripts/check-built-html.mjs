// Fails when the built index.html has anything Assay's CSP would refuse: an inline
// <script> (one without src), a <style> element, or a style="" attribute.
import { readFileSync } from 'node:fs';

const path = process.argv[2] ?? '../src/assay/console/static/index.html';
const html = readFileSync(path, 'utf8').replace(/<!--[\s\S]*?-->/g, '');
const problems = [];
for (const match of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  const [, attributes = '', body = ''] = match;
  if (!/\bsrc=/.test(attributes) || body.trim())
    problems.push(`inline script: ${match[0].slice(0, 80)}`);
}
if (/<style\b/i.test(html)) problems.push('a <style> element');
if (/\sstyle\s*=/i.test(html)) problems.push('a style="" attribute');
if (/\son[a-z]+\s*=/i.test(html)) problems.push('an inline event handler attribute');
if (problems.length) {
  console.error(`${path} breaks the CSP:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(`${path}: no inline script or style`);
