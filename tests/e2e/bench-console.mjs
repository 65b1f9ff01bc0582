// Browser half of `cargo xtask bench console`: the release build upgrades a zero-delay AT MCU
// written in JavaScript behind a fake `navigator.serial`, through the console's real Web Serial
// adapter and flow runner. The image is a Blob made in the page (outside WASM memory).
// Prints one line per run: `flash <MiB> <total ms> <transfer ms> <peak wasm bytes> <ok>`.
// Usage: node tests/e2e/bench-console.mjs <dist> <MiB,MiB,…>
import { serve, launch } from './browser.mjs';

const [dist = 'dist', sizes = '1,100'] = process.argv.slice(2);

// Runs in the page: a fake port whose other end is an AT SOTA MCU answering at once.
function installZeroDelayAtMcu() {
  const enc = new TextEncoder();
  const dec = new TextDecoder('latin1');
  class FakePort {
    getInfo() { return { usbVendorId: 0x1209, usbProductId: 0x0001 }; }
    async open() {
      let toPage;
      this.readable = new ReadableStream({ start(c) { toPage = c; } });
      const send = (text) => toPage.enqueue(enc.encode(text));
      let buf = new Uint8Array(0);
      let binary = 0; // bytes of read data still to come
      let pos = 0, pieceEnd = 0, total = 0;
      const READ = 1024;
      const read = () => send(`AT+QIOTOTARD=${pos},${Math.min(READ, pieceEnd - pos)}\r`);
      const urc = (args) => {
        const [code, ...rest] = args.split(',');
        if (code === '10700') send('AT+QIOTUPDATE=1\r');
        else if (code === '10703') {
          total = Number(rest[1]); pos = Number(rest[2]); pieceEnd = pos + Number(rest[3]);
          read();
        } else if (code === '10704') send('AT+QIOTMCUVER="STM32","2_0_0"\r');
      };
      const take = (bytes) => {
        const joined = new Uint8Array(buf.length + bytes.length);
        joined.set(buf); joined.set(bytes, buf.length);
        buf = joined;
        let at = 0;
        for (;;) {
          if (binary > 0) {
            const n = Math.min(binary, buf.length - at);
            binary -= n; at += n; pos += n;
            if (binary > 0) break;
            if (pos < pieceEnd) read();
            else send(pos >= total ? 'AT+QIOTUPDATE=3\r' : 'AT+QIOTUPDATE=2\r');
            continue;
          }
          const nl = buf.indexOf(10, at);
          if (nl < 0) break;
          const line = dec.decode(buf.subarray(at, nl)).replace(/\r$/, '');
          at = nl + 1;
          if (line.startsWith('+QIOTOTARD: ')) binary = Number(line.split(',')[1]);
          else if (line.startsWith('+QIOTEVT: 7,')) urc(line.slice(12));
          else if (line === 'OK' && this.step === 'echo') { this.step = 'ver'; send('AT+QIOTMCUVER="STM32","1_0_0"\r'); }
          else if (line === 'OK' && this.step === 'ver') { this.step = 'req'; send('AT+QIOTOTAREQ=1\r'); }
        }
        buf = buf.subarray(at);
      };
      this.writable = new WritableStream({ write(chunk) { take(chunk); } });
      this.step = 'echo';
      queueMicrotask(() => send('ATE0\r'));
    }
    async close() {}
  }
  const serial = { requestPort: async () => new FakePort(), getPorts: async () => [] };
  Object.defineProperty(Navigator.prototype, 'serial', { get: () => serial, configurable: true });
}

const site = await serve(dist);
const { context, close } = await launch();
let code = 0;
try {
  for (const mib of sizes.split(',').map(Number)) {
    const page = await context.newPage();
    await page.addInitScript(installZeroDelayAtMcu);
    page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') console.error(m.text()); });
    await page.goto(site.url);
    await page.waitForFunction(() => window.wasmBindings?.bench_flash, null, { timeout: 30000 });
    const r = await page.evaluate(async (m) => {
      // The image: m MiB of a varied pattern, as a Blob outside WASM memory.
      const chunk = new Uint8Array(1 << 20);
      for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + (i >> 11)) & 0xff;
      const parts = [];
      for (let i = 0; i < m; i++) { chunk[0] = i & 0xff; parts.push(chunk.slice()); }
      const blob = new Blob(parts);
      return Array.from(await window.wasmBindings.bench_flash(blob));
    }, mib);
    console.log(`flash ${mib} ${r[0].toFixed(0)} ${r[1].toFixed(0)} ${r[2]} ${r[3]}`);
    if (!r[3]) code = 1;
    await page.close();
  }
  // The page a technician downloads: everything dist/ serves, gzipped as a server would.
} catch (e) {
  console.error(`bench-console: ${e.stack ?? e}`);
  code = 1;
} finally {
  await close();
  site.close();
}
process.exit(code);
