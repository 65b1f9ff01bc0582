// End-to-end: the release build of the console, served on 127.0.0.1, in headless Chromium.
// A generated file goes through the real file input; the page must show the digests computed
// here by Node's crypto and zlib (independent of our Rust code) and log no console errors.
// Usage: node tests/e2e/check-file.mjs <dist> <out-dir>
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { serve, launch } from './browser.mjs';

const [dist = 'dist', out = 'target/e2e'] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}: ${detail}`); }
}

const size = 5 * 1024 * 1024 + 123; // several 1 MiB chunks and a ragged tail
const data = Buffer.alloc(size);
for (let i = 0; i < size; i++) data[i] = (i * 131 + (i >> 13)) & 0xff;
const want = {
  size: `${size} bytes`,
  md5: createHash('md5').update(data).digest('hex'),
  sha256: createHash('sha256').update(data).digest('hex'),
  crc32: (crc32(data) >>> 0).toString(16).padStart(8, '0'),
};

const site = await serve(dist);
const { context, close } = await launch();
const errors = [];
try {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(site.url);
  await page.waitForSelector('#fw-file', { timeout: 30000 });
  check('console page renders its title', (await page.textContent('h1')) === 'SOTA upgrade console', await page.textContent('h1'));

  await page.setInputFiles('#fw-file', { name: 'firmware.bin', mimeType: 'application/octet-stream', buffer: data });
  await page.waitForFunction(() => document.querySelector('#digest-sha256')?.textContent?.length === 64, null, { timeout: 60000 });
  for (const k of ['size', 'md5', 'crc32', 'sha256']) {
    const got = (await page.textContent(`#digest-${k}`)).trim();
    check(`digest ${k} shown`, got === want[k], `page shows ${got}, expected ${want[k]}`);
  }
  await page.fill('#expect-md5', want.md5.toUpperCase());
  await page.fill('#expect-crc32', '00000000');
  check('matching MD5 says match', (await page.textContent('#verdict-md5')).trim() === 'match', await page.textContent('#verdict-md5'));
  check('wrong CRC32 says mismatch', (await page.textContent('#verdict-crc32')).includes('MISMATCH'), await page.textContent('#verdict-crc32'));
  await page.screenshot({ path: join(out, 'file-check.png'), fullPage: true });
  check('no console errors', errors.length === 0, errors.join(' | '));
} catch (e) {
  check('end-to-end run', false, e.stack ?? String(e));
} finally {
  await close();
  site.close();
}
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
