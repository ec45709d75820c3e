/**
 * Shared by the WinRM tests: credentials the fake knows, `withFake` (start the fake with a
 * recording, connect options for it, and the check that the recording played without surprises)
 * and `splitPs` (tells PowerShell code from its single-quoted literals, for injection checks).
 */
import assert from 'node:assert/strict';
import type { WinRmConnectOptions } from '../../src/winrm/winrm-session.js';
import { loadRecording, WinRmFake, type WinRmFakeOptions } from './winrm-fake.js';

export const USER = 'Administrator';
export const PASS = 'S3cret-winrm-pass!';

/** Starts the fake with `recording`, runs `fn`, then checks the whole recording played without surprises. */
export async function withFake(
  recording: string,
  fn: (fake: WinRmFake, opts: WinRmConnectOptions) => Promise<void>,
  fakeOpts: Partial<WinRmFakeOptions> = {},
): Promise<WinRmFake> {
  const auth = fakeOpts.auth ?? 'basic';
  const fake = await WinRmFake.start({
    recording: loadRecording(recording),
    auth,
    username: USER,
    password: PASS,
    ...fakeOpts,
  });
  const opts: WinRmConnectOptions = {
    host: '127.0.0.1',
    port: fake.port,
    username: USER,
    password: PASS,
    auth,
    allowUnencrypted: true,
    timeoutMs: 5000,
  };
  try {
    await fn(fake, opts);
  } finally {
    await fake.stop();
  }
  assert.deepEqual(fake.errors, [], 'the fake saw only what the recording expects');
  return fake;
}

/** Splits PowerShell into code and single-quoted literals (any of ' ‘ ’ ‚ ‛ quotes; doubled = escaped). */
export function splitPs(script: string): { code: string; literals: string[] } {
  const Q = /['\u2018\u2019\u201a\u201b]/;
  let code = '';
  const literals: string[] = [];
  for (let i = 0; i < script.length;) {
    const c = script[i]!;
    if (Q.test(c)) {
      let lit = '';
      for (i++; ;) {
        assert.ok(i < script.length, 'unterminated literal');
        if (Q.test(script[i]!)) {
          if (Q.test(script[i + 1] ?? '')) {
            lit += script[i];
            i += 2;
            continue;
          }
          i++;
          break;
        }
        lit += script[i++];
      }
      literals.push(lit);
      code += "''";
    } else if (c === '#') {
      while (i < script.length && script[i] !== '\n') i++;
    } else code += script[i++];
  }
  return { code, literals };
}
