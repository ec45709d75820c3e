/** Input hygiene rules: what counts as unsafe text, in values, keys and raw URLs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  findUnsafeText,
  findUnsafeUrlText,
  InvalidTextError,
  isSafeText,
  rejectUnsafeText,
} from '../src/index.js';

describe('safe text', () => {
  it('accepts any well-formed text, including surrogate pairs and control characters other than NUL', () => {
    for (const s of ['', 'plain', 'émoji 🦊 ok', 'tab\tnew\nline', '\u{10FFFF}', 'a\uFFFDb']) {
      assert.equal(isSafeText(s), true, JSON.stringify(s));
    }
  });

  it('refuses NUL and lone surrogates, in values and keys, at any depth', () => {
    for (const s of ['a\u0000', '\ud800', 'x\udc00y', '\udc00\ud800']) assert.equal(isSafeText(s), false);
    assert.deepEqual(findUnsafeText({ a: [1, { b: 'ok' }, { c: 'x\u0000' }] })?.path, ['a', 2, 'c']);
    assert.match(findUnsafeText({ ['k\ud800']: 1 })?.reason ?? '', /keys/);
    assert.equal(findUnsafeText({ a: ['ok', 1, null, true], b: Buffer.from([0]) }), undefined);
  });

  it('refuses %00 and percent-encoded bytes that are not UTF-8 in raw URLs', () => {
    assert.equal(findUnsafeUrlText('/api/v1/devices?q=%C3%A9t%C3%A9&x=a+b%2Fc'), undefined);
    assert.equal(findUnsafeUrlText('/api/v1/devices/%F0%9F%A6%8A'), undefined);
    assert.equal(findUnsafeUrlText('/x?q=100%'), undefined);
    assert.equal(findUnsafeUrlText('/x?area=%00')?.location, 'querystring');
    assert.equal(findUnsafeUrlText('/x/%ED%A0%80')?.location, 'path');
    assert.equal(findUnsafeUrlText('/x?a=%ed%b0%80')?.location, 'querystring');
    assert.equal(findUnsafeUrlText('/x?a=%C3')?.location, 'querystring');
  });

  it('rejectUnsafeText answers a 400 invalid_characters before the wrapped validator runs', () => {
    let ran = 0;
    const v = rejectUnsafeText('body', (d: unknown) => {
      ran++;
      return { value: d };
    });
    const bad = v({ name: 'a\u0000b' }) as { error: InvalidTextError };
    assert.ok(bad.error instanceof InvalidTextError);
    assert.equal(bad.error.status, 400);
    assert.equal(bad.error.code, 'invalid_characters');
    assert.equal(bad.error.message, 'body.name: must not contain NUL characters');
    assert.equal(ran, 0);
    assert.deepEqual(v({ name: 'ok' }), { value: { name: 'ok' } });
    assert.equal(ran, 1);
  });
});
