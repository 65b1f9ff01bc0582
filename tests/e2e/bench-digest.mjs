// Browser half of `cargo xtask bench digest`: loads the release build and calls the exported
// bench_digest(MiB, runs), printing one `mbps <value>` line per run.
// Usage: node tests/e2e/bench-digest.mjs <dist> <MiB> <runs>
import { serve, launch } from './browser.mjs';

const [dist = 'dist', mib = '64', runs = '5'] = process.argv.slice(2);
const site = await serve(dist);
const { context, close } = await launch();
let code = 0;
try {
  const page = await context.newPage();
  await page.goto(site.url);
  await page.waitForFunction(() => window.wasmBindings?.bench_digest, null, { timeout: 30000 });
  const results = await page.evaluate(([m, r]) => Array.from(window.wasmBindings.bench_digest(m, r)), [Number(mib), Number(runs)]);
  for (const v of results) console.log(`mbps ${v.toFixed(1)}`);
} catch (e) {
  console.error(`bench-digest: ${e.stack ?? e}`);
  code = 1;
} finally {
  await close();
  site.close();
}
process.exit(code);
