/**
 * What every UI test of this package does with its headless Chromium: the browser and its flags,
 * the skip when Debian's chromium is missing, and the page tools (text, count, screenshots kept
 * when OPSPLANE_UI_SCREENSHOTS names a directory, controls without an accessible name).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { skipUnlessAvailable } from '@opsplane/test-support';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const chromiumSkip = skipUnlessAvailable(
  'chromium',
  existsSync(CHROMIUM),
  `${CHROMIUM} is not installed (node scripts/ensure-deps.mjs installs Debian's chromium)`,
);

export interface PageTools {
  text(selector: string): Promise<string>;
  count(selector: string): Promise<number>;
  /** The whole page as `name` in `dir()` (and in $OPSPLANE_UI_SCREENSHOTS when set); its path. */
  screenshot(name: string): Promise<string>;
  /** Controls without an accessible name (a <label>, aria-label or aria-labelledby) on the page now. */
  unlabelled(): Promise<string[]>;
}

/** Tools over the page `page()` returns now (tests open it in `before`). */
export function pageTools(page: () => Page, dir: () => string): PageTools {
  return {
    text: async (selector) => (await page().locator(selector).first().textContent()) ?? '',
    count: (selector) => page().locator(selector).count(),
    async screenshot(name) {
      const p = page();
      const path = join(dir(), name);
      // The whole page, without scrolling (a full-page capture would draw the sticky header mid-page).
      const size = p.viewportSize() ?? { width: 1360, height: 860 };
      const height = await p.evaluate(() => document.documentElement.scrollHeight);
      await p.setViewportSize({ width: size.width, height: Math.min(Math.max(height, size.height), 3000) });
      await p.screenshot({ path });
      await p.setViewportSize(size);
      const keep = process.env.OPSPLANE_UI_SCREENSHOTS;
      if (keep) {
        await mkdir(keep, { recursive: true });
        await copyFile(path, join(keep, name));
      }
      return path;
    },
    unlabelled: () =>
      page().evaluate(() =>
        [...document.querySelectorAll('input, select, textarea')]
          .filter((el) => {
            const e = el as HTMLInputElement;
            if (e.type === 'hidden' || e.closest('[hidden]')) return false;
            return !e.labels?.length && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby');
          })
          .map((e) => e.id || e.outerHTML.slice(0, 80)),
      ),
  };
}
