// Prints the size of the JavaScript and CSS the dashboard ships, raw and
// gzipped, and fails when the JavaScript is over its budget.
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const budget = 200 * 1024; // gzipped JavaScript
let js = 0, jsGz = 0, css = 0, cssGz = 0;
const assets = '../coordinator/webui/dist/assets';
for (const name of readdirSync(assets)) {
  const b = readFileSync(`${assets}/${name}`);
  const z = gzipSync(b, { level: 9 }).length;
  if (name.endsWith('.js')) { js += b.length; jsGz += z; }
  if (name.endsWith('.css')) { css += b.length; cssGz += z; }
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`dashboard: JavaScript ${kb(js)} (${kb(jsGz)} gzipped, budget ${kb(budget)}), CSS ${kb(css)} (${kb(cssGz)} gzipped)`);
if (jsGz > budget) {
  console.error(`the JavaScript is ${kb(jsGz)} gzipped, over the budget of ${kb(budget)}`);
  process.exit(1);
}
