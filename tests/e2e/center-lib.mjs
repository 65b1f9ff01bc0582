// Shared by the end-to-end checks against the real center (center.mjs, center-faults.mjs,
// center-pages.mjs, center-engineer.mjs): the center with its embedded broker on a fresh data
// dir, its API, the pass/fail tally, one page per scenario with the fake Web Serial port, the
// console's center fields, and for the engineer's pages one page per step, the sign-in and the
// plan form's fields.
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

/// The engineer's pages, one step at a time. `pages(name, width, fn)` runs `fn(page)` on a new
/// page `width` px wide: an error in the page's console fails the step (not the browser's note
/// of a 4xx answer: the scripts provoke the API's refusals), and so does a thrown error, which
/// leaves `<prefix>-<name>-failure.png` in `out`. `shot(page, name)` saves `<name>.png` in `out`.
export function engineerPages(context, out, check, prefix) {
  async function pages(name, width, fn) {
    const errors = [];
    const page = await context.newPage();
    await page.setViewportSize({ width, height: 900 });
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 4[0-9][0-9]/.test(m.text())) errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    try {
      await fn(page);
      check(`${name}: no console errors`, errors.length === 0, errors.join(' | '));
    } catch (e) {
      check(name, false, e.stack ?? String(e));
      await page.screenshot({ path: join(out, `${prefix}-${name}-failure.png`), fullPage: true }).catch(() => {});
    } finally {
      await page.close();
    }
  }
  const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  return { pages, shot };
}

/// The text of the first element matching `sel`, its white space collapsed.
export const text = async (page, sel) => ((await page.textContent(sel)) ?? '').replace(/\s+/g, ' ').trim();

/// The page's width is the screen's: nothing to scroll sideways.
export const fits = (page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

/// Signs in with `token` on the sign-in page shown at the page's current address.
export async function signIn(page, token) {
  await page.fill('#token', token);
  await page.click('#sign-in');
  await page.waitForSelector('main table, main ul.packages, main .package-form', { timeout: 20000 });
}

/// Opens "Create a plan" from the plans list with `product` picked, once the form lists that
/// product's version packages.
export async function openPlanForm(page, product) {
  await page.click('#add-plan');
  await page.waitForSelector('#plan-name');
  await page.waitForFunction((p) => !!document.querySelector(`#plan-product option[value="${p}"]`), product, { timeout: 20000 });
  if ((await page.inputValue('#plan-product')) !== product) await page.selectOption('#plan-product', product);
  await page.waitForFunction(() => document.querySelectorAll('.comp-package option').length > 1, null, { timeout: 20000 });
}

/// Writes `body` as the plan form's upgrade text in `language`: in that language's row, or in a
/// new one.
export async function planText(page, language, body) {
  const rows = page.locator('.text-row');
  const n = await rows.count();
  for (let i = 0; i < n; i++) {
    if ((await rows.nth(i).locator('.text-lang').inputValue()).trim() === language) {
      await rows.nth(i).locator('.text-body').fill(body);
      return;
    }
  }
  await page.click('#plan-add-text');
  await rows.nth(n).locator('.text-lang').fill(language);
  await rows.nth(n).locator('.text-body').fill(body);
}

/// Gives the plan form's component `i` its identity and its version package (by id).
export async function planComponent(page, i, identity, packageId) {
  await page.locator('.comp-identity').nth(i).fill(identity);
  await page.locator('.comp-package').nth(i).selectOption(String(packageId));
}
