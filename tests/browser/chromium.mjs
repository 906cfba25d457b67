// Starts Debian's Chromium for a test, headless, with a fresh profile that
// is deleted on close. Never a browser that playwright would download.
//
//   import { launch } from './chromium.mjs';
//   const { page, close } = await launch({ args: ['--use-fake-device-for-media-stream'] });
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const executablePath = process.env.PEERSCOPE_CHROMIUM || '/usr/bin/chromium';

export const baseArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// WebRTC on loopback: Chromium leaves loopback out of ICE unless told, and
// hides host addresses behind mDNS names that a test peer cannot resolve.
export const loopbackWebRTCArgs = [
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

export async function launch({ args = [], viewport = { width: 640, height: 480 }, timezoneId } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'peerscope-chromium-'));
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(dir, {
      executablePath, headless: true, viewport, args: [...baseArgs, ...args], ...(timezoneId ? { timezoneId } : {}),
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.on('console', (m) => console.error('[page]', m.text()));
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  return {
    ctx, page,
    async close() {
      await ctx.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
