// End-to-end: the release build of the console flashes boards in headless Chromium.
// - the simulated device in the page, with the demo image (what a newcomer does);
// - each protocol through the page's real Web Serial adapter, on a fake port backed by the
//   native MCU simulator (`sota simulate --stdio`), to a byte-exact image;
// - a digest mismatch that stops with zero bytes written to the board.
// Usage: node tests/e2e/flash.mjs <dist> <out-dir> <sota binary>
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { serve, launch } from './browser.mjs';
import { installFakeSerial, bridge } from './fake-serial.mjs';

const [dist = 'dist', out = 'target/e2e', sota = 'target/debug/sota'] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}: ${detail}`); }
}

function image(len, seed) {
  const data = Buffer.alloc(len);
  let x = seed;
  for (let i = 0; i < len; i++) { x = (x * 1103515245 + 12345) >>> 0; data[i] = x >>> 24; }
  return data;
}
const md5 = (b) => createHash('md5').update(b).digest('hex');

const site = await serve(dist);
const { context, close } = await launch();
const tmp = mkdtempSync(join(tmpdir(), 'sota-e2e-'));

async function newPage(errors, { serial = true, viewport } = {}) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  // Without Web Serial: what Firefox, Safari or a plain-http page give the console.
  await page.addInitScript(serial ? installFakeSerial : () => { delete Navigator.prototype.serial; });
  return page;
}

async function resultOf(page, timeout = 60000) {
  await page.waitForSelector('#result', { timeout });
  return {
    cls: await page.getAttribute('#result', 'class'),
    text: (await page.textContent('#result-text')).trim(),
  };
}

async function scenario(name, fn, options) {
  const errors = [];
  const page = await newPage(errors, options);
  try {
    await page.goto(site.url);
    await page.getByRole('button', { name: 'Connect device' }).waitFor({ timeout: 30000 });
    await fn(page);
    check(`${name}: no console errors`, errors.length === 0, errors.join(' | '));
  } catch (e) {
    check(name, false, e.stack ?? String(e));
    await page.screenshot({ path: join(out, `${name}-failure.png`), fullPage: true }).catch(() => {});
  } finally {
    await page.close();
  }
}

try {
  await scenario('simulated-device', async (page) => {
    await page.getByRole('button', { name: 'Use simulated device' }).click();
    await page.waitForFunction(() => document.querySelector('#reported')?.textContent.includes('STM32 1_0_0'), null, { timeout: 20000 });
    await page.getByRole('button', { name: 'Use a demo image' }).click();
    await page.waitForFunction(() => document.querySelector('#digest-sha256')?.textContent.length === 64);
    check('simulated: demo image fills the target version', (await page.inputValue('#target-version')) === '2_0_0', await page.inputValue('#target-version'));
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    // Live progress while the paced simulated line runs.
    await page.waitForFunction(() => document.querySelector('#step')?.dataset.step === 'Writing', null, { timeout: 20000 });
    const figures = await page.textContent('#figures');
    check('simulated: progress shows percent and bytes', /\d+ %/.test(figures) && /\/ 49152 B/.test(figures), figures);
    await page.screenshot({ path: join(out, 'console-simulated-progress.png'), fullPage: true });
    const leaving = () => page.evaluate(() => {
      const e = new Event('beforeunload', { cancelable: true });
      window.dispatchEvent(e);
      return e.defaultPrevented;
    });
    check('simulated: closing the tab mid-transfer asks first', await leaving(), 'no beforeunload guard');
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
      document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
    });
    const warning = await page.textContent('#upgrade-panel-hidden').catch(() => '');
    check('simulated: a hidden tab is warned about', warning.includes('background'), warning);
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: false, configurable: true });
      document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
    });
    const r = await resultOf(page, 90000);
    check('simulated: no guard once finished', !(await leaving()), 'still guarded');
    check('simulated: success screen', r.cls.includes('ok') && r.text.includes('STM32 2_0_0'), JSON.stringify(r));
    await page.screenshot({ path: join(out, 'console-simulated-success.png'), fullPage: true });
  });

  await scenario('at-fake-port', async (page) => {
    const file = image(20 * 1024 + 77, 11);
    const output = join(tmp, 'at.bin');
    const link = await bridge(page, sota, ['simulate', '--protocol', 'at', '--stdio', '--output', output]);
    await page.getByRole('button', { name: 'Connect device' }).click();
    await page.waitForFunction(() => document.querySelector('#reported')?.textContent.includes('STM32 1_0_0'), null, { timeout: 20000 });
    const opened = await page.evaluate(() => window.__fakeSerial.opened);
    check('at: port opened at 115200 8N1', opened.baudRate === 115200 && opened.parity === 'none' && opened.dataBits === 8, JSON.stringify(opened));
    await page.setInputFiles('#fw-file', { name: 'app-2_1_0.bin', mimeType: 'application/octet-stream', buffer: file });
    await page.fill('#target-version', '2_1_0');
    await page.fill('#expect-md5', md5(file));
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    const r = await resultOf(page);
    check('at: success screen names the new version', r.cls.includes('ok') && r.text.includes('STM32 2_1_0'), JSON.stringify(r));
    await link.stop();
    const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
    check('at: the MCU received the image byte-exact', got.equals(file), `${got.length} bytes, md5 ${md5(got)} vs ${md5(file)}`);
    await page.screenshot({ path: join(out, 'console-at-success.png'), fullPage: true });
  });

  await scenario('ymodem-fake-port', async (page) => {
    const file = image(5 * 1024 + 300, 12);
    const output = join(tmp, 'ymodem-out');
    const link = await bridge(page, sota, ['simulate', '--protocol', 'ymodem', '--stdio', '--output', output]);
    await page.getByLabel(/YMODEM-1K/).check();
    await page.getByRole('button', { name: 'Connect device' }).click();
    await page.waitForFunction(() => document.querySelector('#link-status')?.textContent.startsWith('Connected'));
    await page.setInputFiles('#fw-file', { name: 'boot-app.bin', mimeType: 'application/octet-stream', buffer: file });
    await page.fill('#target-version', '3_0_0');
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    const r = await resultOf(page);
    check('ymodem: success screen', r.cls.includes('ok') && r.text.includes(`${file.length} bytes`), JSON.stringify(r));
    await link.stop();
    const path = existsSync(join(output, 'boot-app.bin')) ? join(output, 'boot-app.bin') : output;
    const got = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
    check('ymodem: the bootloader received the file byte-exact', got.equals(file), `${got.length} bytes at ${path}; sim said: ${link.stderr.slice(-300)}`);
    await page.screenshot({ path: join(out, 'console-ymodem-success.png'), fullPage: true });
  });

  await scenario('an3155-fake-port', async (page) => {
    const file = image(6 * 1024 + 10, 13);
    const output = join(tmp, 'flash.bin');
    const link = await bridge(page, sota, ['simulate', '--protocol', 'an3155', '--stdio', '--output', output]);
    await page.getByLabel(/STM32 ROM bootloader/).check();
    check('an3155: parity switches to even', (await page.inputValue('#parity')) === 'even', await page.inputValue('#parity'));
    await page.getByRole('button', { name: 'Connect device' }).click();
    await page.waitForFunction(() => document.querySelector('#link-status')?.textContent.startsWith('Connected'));
    const opened = await page.evaluate(() => window.__fakeSerial.opened);
    check('an3155: port opened with even parity', opened.parity === 'even', JSON.stringify(opened));
    await page.setInputFiles('#fw-file', { name: 'f103.bin', mimeType: 'application/octet-stream', buffer: file });
    await page.fill('#target-version', '1_2_0');
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    const r = await resultOf(page);
    check('an3155: success after read-back', r.cls.includes('ok') && r.text.includes('read back identical'), JSON.stringify(r));
    const chip = await page.textContent('#chip');
    check('an3155: chip ID and bootloader version shown', chip.includes('0x410') && chip.includes('bootloader 2.2'), chip);
    await page.waitForTimeout(600); // the simulator saves its flash after 200 ms of quiet
    await link.stop();
    const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
    check('an3155: flash holds the image', got.subarray(0, file.length).equals(file), `${got.length} bytes`);
    await page.screenshot({ path: join(out, 'console-an3155-success.png'), fullPage: true });
  });

  for (const [proto, label, size] of [['at', /QuecThing AT/, 40 * 1024], ['an3155', /STM32 ROM bootloader/, 24 * 1024]]) {
    await scenario(`cable-pull-${proto}`, async (page) => {
      const file = image(size, 21);
      const output = join(tmp, `pull-${proto}.bin`);
      const link = await bridge(page, sota, ['simulate', '--protocol', proto, '--stdio', '--output', output]);
      await page.getByLabel(label).check();
      await page.getByRole('button', { name: 'Connect device' }).click();
      await page.waitForFunction(() => document.querySelector('#link-status')?.textContent.startsWith('Connected'));
      await page.setInputFiles('#fw-file', { name: `pull-${proto}.bin`, mimeType: 'application/octet-stream', buffer: file });
      await page.fill('#target-version', '4_0_0');
      await page.getByRole('button', { name: 'Start upgrade' }).click();
      // Pull the cable once a third of the image went out.
      await page.waitForFunction(() => {
        const p = document.querySelector('#progress progress');
        const step = document.querySelector('#step')?.dataset.step;
        return step === 'Writing' && p && p.value / p.max > 0.33;
      }, null, { timeout: 60000, polling: 20 });
      const before = link.written;
      await page.evaluate(() => window.__fakeSerial.fail());
      await page.waitForFunction(() => document.querySelector('#link-status')?.textContent.startsWith('Connection lost'));
      const paused = await page.textContent('#paused');
      check(`cable pull (${proto}): the page says the transfer is paused and what to do`, paused.includes('Plug it back in'), paused);
      await page.screenshot({ path: join(out, `console-cable-pull-${proto}.png`), fullPage: true });
      await page.waitForTimeout(500);
      await page.getByRole('button', { name: 'Connect device' }).click();
      const r = await resultOf(page);
      check(`cable pull (${proto}): success after plugging back in`, r.cls.includes('ok'), JSON.stringify(r));
      const log = await page.textContent('#log');
      check(`cable pull (${proto}): the log says it continued`, log.includes('continuing'), log.slice(-400));
      // Resumed, not restarted: well under two images went over the line in all.
      check(`cable pull (${proto}): resumed from the last confirmed offset`, before > size / 4 && link.written < 1.9 * size + 8192, `${before} before the pull, ${link.written} in all, image ${size}`);
      if (proto === 'an3155') await page.waitForTimeout(600);
      await link.stop();
      const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
      check(`cable pull (${proto}): image byte-exact`, got.subarray(0, size).equals(file) && got.length >= size, `${got.length} bytes`);
    });
  }

  // A tablet in portrait, in Chinese, with no Web Serial: the page says why, and the simulated
  // device still reaches a successful upgrade.
  await scenario('tablet-zh-no-web-serial', async (page) => {
    await page.getByRole('button', { name: '中文' }).click();
    const notice = await page.textContent('.notice');
    check('no Web Serial: the page says why and what to do', notice.includes('Web Serial') && notice.includes('Chrome'), notice);
    check('no Web Serial: "Connect device" is disabled', await page.isDisabled('#connect'), 'enabled');
    check('zh: the buttons speak Chinese', (await page.textContent('#start')).trim() === '开始升级', await page.textContent('#start'));
    await page.check('input[name=protocol][value=at]');
    await page.click('#simulate');
    await page.waitForFunction(() => document.querySelector('#reported')?.textContent.includes('STM32 1_0_0'), null, { timeout: 20000 });
    await page.click('#demo-file');
    await page.waitForFunction(() => document.querySelector('#digest-sha256')?.textContent.length === 64);
    await page.click('#start');
    const r = await resultOf(page, 90000);
    check('tablet: simulated upgrade succeeds without Web Serial', r.cls.includes('ok'), JSON.stringify(r));
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check('tablet: nothing wider than the screen', width <= 768, `${width} px`);
    await page.screenshot({ path: join(out, 'console-tablet-zh.png'), fullPage: true });
  }, { serial: false, viewport: { width: 768, height: 1024 } });

  // Cancel mid-transfer: the MCU is told the update failed and keeps its firmware.
  await scenario('cancel', async (page) => {
    await page.check('input[name=protocol][value=at]');
    await page.getByRole('button', { name: 'Use simulated device' }).click();
    await page.waitForFunction(() => document.querySelector('#reported')?.textContent.includes('STM32 1_0_0'), null, { timeout: 20000 });
    await page.getByRole('button', { name: 'Use a demo image' }).click();
    await page.waitForFunction(() => document.querySelector('#digest-sha256')?.textContent.length === 64);
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    await page.waitForFunction(() => document.querySelector('#step')?.dataset.step === 'Writing', null, { timeout: 20000 });
    await page.getByRole('button', { name: 'Cancel' }).click();
    const r = await resultOf(page);
    check('cancel: says the MCU keeps its firmware', r.cls.includes('cancelled') && r.text.includes('keeps its current firmware'), JSON.stringify(r));
    await page.waitForTimeout(500);
    const log = await page.textContent('#log');
    check('cancel: the MCU never reports the new version', !log.includes('STM32 2_0_0'), log.slice(-300));
    check('cancel: Connect device is available again', !(await page.isDisabled('#simulate')), 'disabled');
    await page.screenshot({ path: join(out, 'console-cancelled.png'), fullPage: true });
  });

  await scenario('digest-mismatch', async (page) => {
    const file = image(4096, 14);
    const output = join(tmp, 'mismatch-out');
    const link = await bridge(page, sota, ['simulate', '--protocol', 'ymodem', '--stdio', '--output', output]);
    await page.getByLabel(/YMODEM-1K/).check();
    await page.getByRole('button', { name: 'Connect device' }).click();
    await page.waitForFunction(() => document.querySelector('#link-status')?.textContent.startsWith('Connected'));
    await page.setInputFiles('#fw-file', { name: 'tampered.bin', mimeType: 'application/octet-stream', buffer: file });
    await page.fill('#target-version', '9_9_9');
    await page.fill('#expect-sha256', 'ab'.repeat(32));
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    const r = await resultOf(page);
    check('mismatch: stops with a clear message', r.cls.includes('error') && r.text.includes('SHA-256') && r.text.includes('nothing was sent'), JSON.stringify(r));
    await page.waitForTimeout(1500); // the bootloader keeps asking with 'C': nothing may answer
    check('mismatch: zero bytes written to the board', link.written === 0, `${link.written} bytes written`);
    await link.stop();
    await page.screenshot({ path: join(out, 'console-mismatch.png'), fullPage: true });
  });
} finally {
  await close();
  site.close();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
