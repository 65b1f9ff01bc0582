// Shared by the end-to-end checks against the real center (center.mjs, center-faults.mjs):
// the center with its embedded broker on a fresh data dir, its API, the pass/fail tally, one
// page per scenario with the fake Web Serial port, and the console's center fields.
import { mkdtempSync } from 'node:fs';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { installFakeSerial, bridge } from './fake-serial.mjs';

/// Counts checks and prints each one.
export function tally() {
  const t = { passed: 0, failed: 0 };
  t.check = (name, ok, detail) => {
    if (ok) { t.passed++; console.log(`ok   ${name}`); } else { t.failed++; console.log(`FAIL ${name}: ${detail}`); }
  };
  return t;
}

/// Starts `sota-center serve` (embedded broker, fresh SQLite, demo data) serving the console
/// in `dist` on its own origin, with an API token. `center.kill()` stops it.
export async function startCenter(centerBin, dist, prefix = 'sota-e2e-center-') {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const data = join(tmp, 'data');
  const token = execFileSync(centerBin, ['token', 'create', '--name', 'e2e', '--data-dir', data]).toString().trim();

  // The center, with the console on its own origin.
  const center = spawn(centerBin, [
    'serve', '--listen', '127.0.0.1:0', '--mqtt-listen', '127.0.0.1:0', '--mqtt-ws-listen', '127.0.0.1:0',
    '--data-dir', data, '--console-dir', dist,
  ], { env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
  // The broker's TCP address (`host:port`), printed right after the HTTP one.
  let mqtt = '';
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('sota-center printed no address within 60 s')), 60000);
    createInterface({ input: center.stdout }).on('line', (line) => {
      const m = line.match(/^sota-center listening on (\S+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
      const b = line.match(/^sota-center MQTT on mqtt:\/\/(\S+)/);
      if (b) mqtt = b[1];
    });
    center.on('exit', (code) => fail(new Error(`sota-center exited (${code})`)));
  });

  async function api(method, path, body) {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}) },
      body: body instanceof FormData ? body : body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /// The device's first component in the plan's monitoring, once it is no longer pending.
  async function outcome(planId, device, timeout = 30000) {
    const until = Date.now() + timeout;
    for (;;) {
      const devices = await api('GET', `/plans/${planId}/devices`);
      const c = devices.find((d) => d.device_key === device)?.components?.[0];
      if (c && c.outcome !== 'pending') return c;
      if (Date.now() > until) return c ?? null;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  return { tmp, data, token, center, base, api, outcome, mqtt: () => mqtt };
}

/// Runs `fn(page)` on a new page of the console with the fake serial port installed; a thrown
/// error fails the scenario and leaves `<prefix>-<name>-failure.png` in `out`. `setup(page)`
/// runs before the page loads (routes).
export function scenarios(context, base, out, check, prefix = 'center') {
  return async function scenario(name, fn, setup) {
    const errors = [];
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.addInitScript(installFakeSerial);
    try {
      if (setup) await setup(page);
      await page.goto(base + '/');
      await page.getByRole('button', { name: 'Connect device' }).waitFor({ timeout: 30000 });
      await fn(page, errors);
      check(`${name}: no console errors`, errors.length === 0, errors.join(' | '));
    } catch (e) {
      check(name, false, e.stack ?? String(e));
      await page.screenshot({ path: join(out, `${prefix}-${name}-failure.png`), fullPage: true }).catch(() => {});
    } finally {
      await page.close();
    }
  };
}

/// Connects the fake port to an AT MCU at `version` (`sota simulate`) and fills in the
/// center's fields; `address`: the center's MQTT address, empty for the page's own center.
export async function device(page, sota, key, version, secret, output, address = '') {
  const link = await bridge(page, sota, ['simulate', '--protocol', 'at', '--stdio', '--firmware-version', version, '--output', output]);
  await page.getByRole('button', { name: 'Connect device' }).click();
  await page.waitForFunction((v) => document.querySelector('#reported')?.textContent.includes(`STM32 ${v}`), version, { timeout: 20000 });
  await page.fill('#center-product', 'demo-product');
  await page.fill('#center-device', key);
  await page.fill('#center-device-secret', '');
  await page.fill('#center-product-secret', secret);
  await page.fill('#center-address', address);
  return link;
}

/// The result panel's class and text, once shown.
export async function resultOf(page, timeout = 60000) {
  await page.waitForSelector('#result', { timeout });
  return { cls: await page.getAttribute('#result', 'class'), text: (await page.textContent('#result-text')).trim() };
}

/// The console's named records in browser storage (IndexedDB `records`), as { name: text }.
export async function browserRecords(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('sota-console');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const store = open.result.transaction('records').objectStore('records');
      const keys = store.getAllKeys();
      const values = store.getAll();
      values.onsuccess = () => resolve(Object.fromEntries(keys.result.map((k, i) => [String(k), values.result[i]])));
      values.onerror = () => reject(values.error);
    };
  }));
}
