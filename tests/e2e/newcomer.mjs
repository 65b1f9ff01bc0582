// The README's first command as a newcomer meets it: `cargo xtask serve` (center with its
// embedded broker and SQLite on :8081, the console from `trunk serve` on :8080 with the proxy
// to the center). The page's own simulated AT MCU (no cable), plans from the center with the
// demo product's login printed by the center, the demo plan to success; then the center's
// monitoring (through the same proxy, with a token made by the center's CLI) shows it.
// Usage: node tests/e2e/newcomer.mjs <serve log> <out-dir> <token>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';

const [serveLog, out = 'target/e2e', token] = process.argv.slice(2);
const login = readFileSync(serveLog, 'utf8').match(/product key "([^"]+)", product secret (\S+)/);
if (!login) {
  console.log('FAIL the center printed no demo login');
  process.exit(1);
}
const [, product, secret] = login;
const DEVICE = `newcomer-${Date.now()}`;
const { context, close } = await launch();
let failed = 0;
const check = (what, ok, detail = '') => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${ok ? '' : `: ${detail}`}`);
  if (!ok) failed += 1;
};
const page = await context.newPage();
try {
  await page.goto('http://127.0.0.1:8080/');
  await page.getByRole('button', { name: 'Use simulated device' }).click();
  await page.waitForFunction(() => document.querySelector('#reported')?.textContent.includes('STM32'), null, { timeout: 30000 });
  await page.fill('#center-product', product);
  await page.fill('#center-device', DEVICE);
  await page.fill('#center-product-secret', secret);
  await page.getByRole('button', { name: 'Get plans from the center' }).click();
  await page.waitForSelector('#result', { timeout: 60000 });
  const cls = await page.getAttribute('#result', 'class');
  const text = await page.textContent('#result');
  await page.screenshot({ path: join(out, 'newcomer-serve.png'), fullPage: true });
  check('the demo plan reaches success in the page', cls.includes('ok'), `${cls}: ${text}`);
  const api = async (path) => (await fetch(`http://127.0.0.1:8080/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } })).json();
  const plan = (await api('/plans')).find((p) => p.product_key === product);
  let row;
  for (let i = 0; i < 50 && row?.outcome !== 'succeeded'; i++) {
    const devices = await api(`/plans/${plan.id}/devices`);
    row = devices.find((d) => d.device_key === DEVICE)?.components?.[0];
    await new Promise((r) => setTimeout(r, 200));
  }
  check('the center\'s monitoring shows update ok', row?.outcome === 'succeeded' && row?.status === 11, JSON.stringify(row));
} catch (e) {
  await page.screenshot({ path: join(out, 'newcomer-serve-failed.png'), fullPage: true }).catch(() => {});
  console.log((await page.textContent('#log').catch(() => '')) ?? '');
  check('newcomer run', false, e.stack ?? String(e));
} finally {
  await close();
}
process.exit(failed === 0 ? 0 : 1);
