// Browser half of `cargo xtask bench console`, download part: the real center (release build,
// embedded broker, fresh SQLite) holds a generated package; the release console, served by the
// center on its own origin, downloads it through its download path (Range requests of the flow's
// chunk size, digest, IndexedDB). Prints `download <MiB> <ms> <peak wasm bytes> <ok>`.
// Usage: node tests/e2e/bench-download.mjs <dist> <sota-center binary> <MiB>
import { rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { launch } from './browser.mjs';
import { startCenter } from './center-lib.mjs';

const [dist = 'dist', centerBin = 'target/release/sota-center', mibArg = '100'] = process.argv.slice(2);
const mib = Number(mibArg);
const { tmp, center, base, api } = await startCenter(centerBin, dist, 'sota-bench-download-');

let code = 0;
const { context, close } = await launch();
try {
  const image = Buffer.alloc(mib << 20);
  for (let i = 0; i < image.length; i++) image[i] = (i * 131 + (i >> 11)) & 0xff;
  const sha256 = createHash('sha256').update(image).digest('hex');
  const form = new FormData();
  for (const [k, v] of Object.entries({ product_key: 'demo-product', name: 'bench', component_type: 'SOTA', package_type: 'full', target_version: '9_9_9' })) form.append(k, v);
  form.append('file', new Blob([image]), 'bench.bin');
  const pkg = await api('POST', '/packages', form);
  await api('PUT', '/products/demo-product/devices/bench-1', { components: { STM32: '1_0_0' } });
  const link = await api('POST', `/packages/${pkg.id}/files/0/links`, { product_key: 'demo-product', device_key: 'bench-1' });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(m.text()); });
  await page.goto(base + '/');
  await page.waitForFunction(() => window.wasmBindings?.bench_download, null, { timeout: 30000 });
  const r = await page.evaluate(async ([url, size, sha]) => Array.from(await window.wasmBindings.bench_download(url, size, sha)), [link.url, image.length, sha256]);
  console.log(`download ${mib} ${r[0].toFixed(0)} ${r[1]} ${r[2]}`);
  if (!r[2]) code = 1;
} catch (e) {
  console.error(`bench-download: ${e.stack ?? e}`);
  code = 1;
} finally {
  await close();
  center.kill();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
