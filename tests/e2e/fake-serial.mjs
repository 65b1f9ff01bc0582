// A fake `navigator.serial` for end-to-end tests, backed by any byte stream in Node: here the
// native MCU simulator (`sota simulate --stdio`). The page's real Web Serial adapter runs
// against a port whose `readable` and `writable` are real ReadableStream/WritableStream
// objects; docs/testing.md explains how to back it with another MCU.
import { spawn } from 'node:child_process';

// Runs in the page before the app starts (page.addInitScript).
export function installFakeSerial() {
  const state = { opened: null, push: null, fail: null, closed: 0 };
  window.__fakeSerial = state;
  class FakePort {
    getInfo() { return { usbVendorId: 0x0483, usbProductId: 0x5740 }; }
    async open(options) {
      state.opened = { ...options };
      this.readable = new ReadableStream({
        start(controller) {
          state.push = (bytes) => controller.enqueue(new Uint8Array(bytes));
          state.fail = () => controller.error(new DOMException('The device has been lost.', 'NetworkError'));
        },
      });
      this.writable = new WritableStream({
        write(chunk) { return window.__serialWrite(Array.from(chunk)); },
      });
    }
    async close() { state.closed++; }
    async forget() {}
  }
  // As Chrome does, a port the page was allowed is listed by getPorts() after a reload.
  const serial = {
    requestPort: async () => { sessionStorage.setItem('fakeSerialGranted', '1'); return new FakePort(); },
    getPorts: async () => (sessionStorage.getItem('fakeSerialGranted') ? [new FakePort()] : []),
    addEventListener() {},
    removeEventListener() {},
  };
  Object.defineProperty(Navigator.prototype, 'serial', { get: () => serial, configurable: true });
}

// Joins the page's fake port to a child process's stdin/stdout. Returns a handle that counts
// the bytes the page wrote and stops the child.
export async function bridge(page, command, args) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const handle = { written: 0, writes: 0, stderr: '', child, exited: null };
  child.stderr.on('data', (d) => { handle.stderr += d.toString(); });
  child.on('exit', (code) => { handle.exited = code; });
  child.stdin.on('error', () => {});
  await page.exposeFunction('__serialWrite', (bytes) => {
    handle.written += bytes.length;
    handle.writes++;
    if (!child.stdin.destroyed) child.stdin.write(Buffer.from(bytes));
  });
  child.stdout.on('data', (d) => {
    const bytes = Array.from(d);
    page.evaluate((b) => window.__fakeSerial.push && window.__fakeSerial.push(b), bytes).catch(() => {});
  });
  handle.stop = () => new Promise((ok) => {
    if (handle.exited !== null) return ok();
    child.once('exit', () => ok());
    child.stdin.end();
    setTimeout(() => { child.kill('SIGKILL'); }, 2000);
  });
  return handle;
}
