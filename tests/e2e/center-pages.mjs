// End-to-end: the engineer's pages of the center (`/center`) in the same app as the technician's
// console, against the real center (`sota-center serve`, embedded broker, fresh SQLite, demo
// data) serving the release build on its own origin.
// - a technician upgrades field-1 with the demo plan first, so a device has a history;
// - sign-in: no token, a wrong token (the API's message), the right one kept in the browser;
//   a reload on a deep address; a refused kept token ("sign in again"); sign-out;
// - products and devices: the demo product, its devices, a search by key on the server, a
//   device's components and upgrade history;
// - version packages: the list, delete refused while the demo plan uses its package (the API's
//   message), a refused form (bad extension), an upload of two generated files with a bar per
//   file and the digests Node's crypto computes, delete of the new package;
// - screenshots under <out> at 1280 px and 768 px.
// Usage: node tests/e2e/center-pages.mjs <dist> <out-dir> <sota binary> <sota-center binary>
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { launch } from './browser.mjs';
import { tally, startCenter, scenarios, device, resultOf } from './center-lib.mjs';

const [dist = 'dist', out = 'target/e2e', sota = 'target/debug/sota', centerBin = 'target/debug/sota-center'] = process.argv.slice(2);
const t = tally();
const check = t.check;

const { tmp, token, center, base, api } = await startCenter(centerBin, dist, 'sota-e2e-pages-');
const { context, close } = await launch();
const scenario = scenarios(context, base, out, check, 'center-pages');

/// Runs `fn(page)` on a new page at `width` px; a thrown error fails the step with a screenshot.
async function pages(name, width, fn) {
  const errors = [];
  const page = await context.newPage();
  await page.setViewportSize({ width, height: 900 });
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[0-9]/.test(m.text())) errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await fn(page);
    check(`${name}: no console errors`, errors.length === 0, errors.join(' | '));
  } catch (e) {
    check(name, false, e.stack ?? String(e));
    await page.screenshot({ path: join(out, `center-pages-${name}-failure.png`), fullPage: true }).catch(() => {});
  } finally {
    await page.close();
  }
}

const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
const text = async (page, sel) => ((await page.textContent(sel)) ?? '').replace(/\s+/g, ' ').trim();

/// Signs in on the sign-in page shown at the page's current address.
async function signIn(page) {
  await page.fill('#token', token);
  await page.click('#sign-in');
  await page.waitForSelector('main table, main ul.packages, main .package-form', { timeout: 20000 });
}

try {
  const demoPackage = (await api('GET', '/packages')).find((p) => p.product_key === 'demo-product');
  const secret = (await api('GET', '/products/demo-product')).product_secret;

  // A device with a history: the technician's console upgrades field-1 with the demo plan.
  await scenario('technician-upgrade', async (page) => {
    const link = await device(page, sota, 'field-1', '1_0_0', secret, join(tmp, 'field-1.bin'));
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    const r = await resultOf(page, 90000);
    check('technician: the demo plan upgrades field-1', r.cls.includes('ok'), JSON.stringify(r));
    await link.stop();
  });

  for (const width of [1280, 768]) {
    await pages(`sign-in-${width}`, width, async (page) => {
      // Without a token (the browser's storage is shared by the steps).
      await page.goto(`${base}/center`);
      await page.evaluate(() => localStorage.removeItem('sota-console.operator-token'));
      await page.reload();
      await page.waitForSelector('#token', { timeout: 30000 });
      check(`${width}: without a token the sign-in page shows`, (await text(page, '#sign-in-title')) === 'Sign in' && (await page.$('#products')) === null, await text(page, 'main'));
      await shot(page, `center-sign-in-${width}`);
      await page.fill('#token', 'not-a-token');
      await page.click('#sign-in');
      await page.waitForSelector('#sign-in-error', { timeout: 20000 });
      const refused = await text(page, '#sign-in-error');
      check(`${width}: a wrong token shows the API's message`, refused.includes('operator token is unknown'), refused);
      check(`${width}: a wrong token is not kept`, (await page.evaluate(() => localStorage.getItem('sota-console.operator-token'))) === null, 'kept');
      await shot(page, `center-sign-in-refused-${width}`);
      await signIn(page);
      const products = await text(page, '#products');
      check(`${width}: the demo product is listed`, products.includes('demo-product') && products.includes('Smart aroma diffuser (demo data)'), products);
      check(`${width}: the token is kept in the browser`, (await page.evaluate(() => localStorage.getItem('sota-console.operator-token'))) === token, 'not kept');
      await shot(page, `center-products-${width}`);
    });
  }

  await pages('devices', 1280, async (page) => {
    // Signed in by the kept token; a deep address survives a reload (the center's SPA fallback).
    await page.goto(`${base}/center`);
    await page.waitForSelector('#products', { timeout: 30000 });
    await page.getByRole('link', { name: 'demo-product' }).click();
    await page.waitForSelector('#devices');
    check('devices: the address names the product', page.url().endsWith('/center/products/demo-product'), page.url());
    await page.reload();
    await page.waitForSelector('#devices', { timeout: 30000 });
    const all = await text(page, '#devices');
    check('devices: after a reload the demo devices are listed', ['demo-device-1', 'demo-device-2', 'demo-device-3', 'field-1'].every((k) => all.includes(k)), all);
    check('devices: components and versions are shown', all.includes('STM32 1_0_0') && all.includes('STM32 1_0_1'), all);
    await page.fill('#device-search', 'field');
    await page.click('#device-search-go');
    await page.waitForFunction(() => !document.querySelector('#devices')?.textContent.includes('demo-device-1'), null, { timeout: 20000 });
    const found = await text(page, '#devices');
    check('devices: a search by key prefix finds field-1 only', found.includes('field-1') && !found.includes('demo-device'), found);
    await shot(page, 'center-devices-1280');
    await page.fill('#device-search', 'nobody');
    await page.click('#device-search-go');
    await page.waitForSelector('#no-devices', { timeout: 20000 });
    check('devices: no match is said', (await text(page, '#no-devices')) === 'No device matches.', await text(page, 'main'));
    await page.fill('#device-search', 'field-');
    await page.click('#device-search-go');
    await page.waitForSelector('#devices');
    await page.getByRole('link', { name: 'field-1' }).click();
    await page.waitForSelector('#upgrades', { timeout: 20000 });
    const components = await text(page, '#components');
    check('device: its components and versions', components.includes('STM32') && components.includes('1_0_1'), components);
    const upgrades = await text(page, '#upgrades');
    check('device: its upgrade history shows the demo plan succeeded', upgrades.includes('update_ok') && upgrades.includes('succeeded'), upgrades);
    const log = await text(page, '#upgrade-log');
    check('device: the upgrade log is shown', log.includes('download_start') && log.includes('update_ok'), log.slice(0, 300));
    await shot(page, 'center-device-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-device-768');
    await page.click('button[aria-pressed="false"]:has-text("中文")');
    await page.waitForFunction(() => document.querySelector('#history-title')?.textContent === '升级记录');
    check('device: the language switch covers the center pages', (await text(page, 'nav.center-nav')).includes('版本包') && (await text(page, '#upgrades')).includes('成功'), await text(page, 'nav.center-nav'));
    await shot(page, 'center-device-zh-768');
  });

  await pages('packages', 1280, async (page) => {
    await page.goto(`${base}/center/packages`);
    await page.waitForSelector('#packages', { timeout: 30000 });
    const demo = `#package-${demoPackage.id}`;
    const listed = await text(page, demo);
    check('packages: the demo package with its file and digests', listed.includes(demoPackage.meta?.name ?? demoPackage.name) && listed.includes(demoPackage.files[0].sha256) && listed.includes(demoPackage.files[0].md5), listed.slice(0, 300));
    await page.click(`${demo} button.delete`);
    await page.click(`${demo} button.confirm-delete`);
    await page.waitForSelector(`${demo} .refusal`, { timeout: 20000 });
    const refusal = await text(page, `${demo} .refusal`);
    check('packages: delete is refused with the API\'s message while the demo plan uses it', refusal.includes('is used by') && refusal.includes('plan'), refusal);
    check('packages: the refused package stays listed', (await page.$(demo)) !== null, 'gone');
    await shot(page, 'center-packages-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-packages-768');
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.click('#add-package');
    await page.waitForSelector('#pkg-name');
    check('form: the address is /center/packages/new', page.url().endsWith('/center/packages/new'), page.url());
    await page.waitForFunction(() => document.querySelector('#pkg-product')?.value === 'demo-product');
    await page.fill('#pkg-name', 'Scent profiles');
    await page.fill('#pkg-target', '1_0_2');
    check('form: the source version is hidden for a full package', (await page.$('#pkg-source')) === null, 'shown');
    await page.check('#pkg-delta');
    await page.waitForSelector('#pkg-source');
    await page.click('#pkg-submit');
    await page.waitForSelector('#pkg-error');
    const needSource = await text(page, '#pkg-error');
    check('form: a delta without its source version is refused before upload', needSource.includes('source_version'), needSource);
    await page.check('#pkg-full');
    await page.waitForFunction(() => !document.querySelector('#pkg-source'));
    const bad = join(tmp, 'firmware.exe');
    writeFileSync(bad, randomBytes(1000));
    await page.setInputFiles('#pkg-files', bad);
    await page.click('#pkg-submit');
    await page.waitForFunction(() => document.querySelector('#pkg-error')?.textContent.includes('firmware.exe'));
    const badType = await text(page, '#pkg-error');
    check('form: a bad extension is refused with the API\'s message', badType.includes('unaccepted type') && badType.includes('.bin'), badType);
    await shot(page, 'center-package-refused-1280');
    await page.click('#pkg-picked button.remove');

    // Two generated files, uploaded at 4 MB/s so the bars can be seen moving.
    const files = [['scent-1_0_2.bin', randomBytes(3 << 20)], ['scent-1_0_2.tar.gz', randomBytes(2 << 20)]];
    for (const [name, bytes] of files) writeFileSync(join(tmp, name), bytes);
    await page.setInputFiles('#pkg-files', files.map(([name]) => join(tmp, name)));
    await page.fill('#pkg-remarks', 'Generated by center-pages.mjs');
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 << 20 });
    await page.click('#pkg-submit');
    await page.waitForFunction(() => document.querySelectorAll('#pkg-picked progress.file-progress').length === 2, null, { timeout: 20000 });
    await page.waitForFunction(() => Number(document.querySelector('#pkg-picked progress.file-progress')?.value) > 0, null, { timeout: 20000 });
    const bars = await page.$$eval('#pkg-picked progress.file-progress', (ps) => ps.map((p) => Number(p.value)));
    check('form: a progress bar per file while uploading', bars.length === 2 && bars[0] > 0 && bars[0] >= bars[1], JSON.stringify(bars));
    await shot(page, 'center-package-uploading-1280');
    await page.waitForSelector('#pkg-result', { timeout: 60000 });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    for (const [name, bytes] of files) {
      const row = `#pkg-result tr.file[data-name="${name}"]`;
      const got = {
        size: Number(await page.getAttribute(`${row} .size`, 'data-bytes')),
        md5: await text(page, `${row} .md5`),
        crc32: await text(page, `${row} .crc32`),
        sha256: await text(page, `${row} .sha256`),
      };
      const want = {
        size: bytes.length,
        md5: createHash('md5').update(bytes).digest('hex'),
        crc32: crc32(bytes).toString(16).padStart(8, '0'),
        sha256: createHash('sha256').update(bytes).digest('hex'),
      };
      check(`form: ${name}'s size and digests match Node's crypto`, JSON.stringify(got) === JSON.stringify(want), `${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    }
    await shot(page, 'center-package-stored-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-package-stored-768');
    const stored = (await api('GET', '/packages')).find((p) => p.name === 'Scent profiles');
    check('form: the center stored every field', stored?.product_key === 'demo-product' && stored?.component_type === 'SOTA' && stored?.package_type === 'full' && stored?.target_version === '1_0_2' && stored?.remarks === 'Generated by center-pages.mjs' && stored?.files.length === 2, JSON.stringify(stored));

    await page.click('.crumbs a');
    await page.waitForSelector(`#package-${stored.id}`);
    await page.click(`#package-${stored.id} button.delete`);
    await page.click(`#package-${stored.id} button.confirm-delete`);
    await page.waitForFunction((id) => document.querySelector('#packages') && !document.querySelector(`#package-${id}`), stored.id, { timeout: 20000 });
    check('packages: a package no plan uses is deleted', !(await api('GET', '/packages')).some((p) => p.id === stored.id), 'still stored');
  });

  await pages('sign-out', 1280, async (page) => {
    // A kept token the center no longer knows: "sign in again" with the API's message.
    await page.goto(`${base}/center`);
    await page.evaluate(() => localStorage.setItem('sota-console.operator-token', 'revoked-token'));
    await page.goto(`${base}/center/products/demo-product`);
    await page.waitForSelector('#refused', { timeout: 30000 });
    const refused = await text(page, '#refused');
    check('a refused kept token: "Sign in again" with the API\'s message', (await text(page, '#sign-in-title')) === 'Sign in again' && refused.includes('operator token is unknown'), refused);
    await shot(page, 'center-sign-in-again-1280');
    await signIn(page);
    check('signed in again, the page asked for shows', (await text(page, '#devices')).includes('demo-device-1'), await text(page, 'main'));
    await page.click('#sign-out');
    await page.waitForSelector('#token');
    check('sign-out forgets the token', (await page.evaluate(() => localStorage.getItem('sota-console.operator-token'))) === null, 'still kept');
    // The technician's console is one link away and unchanged.
    await page.click('a.away');
    await page.getByRole('button', { name: 'Connect device' }).waitFor({ timeout: 30000 });
    check('the technician console is at /', new URL(page.url()).pathname === '/', page.url());
  });
} catch (e) {
  check('center pages e2e setup', false, e.stack ?? String(e));
} finally {
  await close();
  center.kill();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`e2e: ${t.passed} passed, ${t.failed} failed`);
process.exit(t.failed === 0 ? 0 : 1);
