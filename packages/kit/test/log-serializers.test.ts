/** The log serializers: no SQL parameters, secret-looking values or query strings in log lines. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { safeErrSerializer, safeReqSerializer, withSafeSerializers } from '../src/index.js';

/** What drizzle throws when a statement fails (drizzle-orm's DrizzleQueryError, same shape). */
class QueryError extends Error {
  constructor(
    readonly query: string,
    readonly params: unknown[],
    cause: unknown,
  ) {
    super(`Failed query: ${query}\nparams: ${params}`, { cause });
  }
}

const HASH = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

describe('log serializers', () => {
  it('drop the parameters of a failed SQL statement from message, stack and properties', () => {
    const cause = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), {
      code: '22021',
      detail: `Key (token_hash)=(${HASH}) already exists.`,
    });
    const err = new QueryError(
      'insert into "api_tokens" ("name", "token_hash") values ($1, $2)',
      ['a\u0000b', HASH],
      cause,
    );
    const out = JSON.stringify(safeErrSerializer(err));
    assert.ok(!out.includes(HASH), out);
    assert.ok(!out.includes('\\u0000'), out);
    assert.match(out, /Failed query: insert into/);
    assert.match(out, /params: \[redacted\]/);
    assert.match(out, /invalid byte sequence/);
  });

  it('redact secret-looking properties, keep the error type and code', () => {
    const err = Object.assign(new Error('upstream said no'), {
      code: 'E_UPSTREAM',
      headers: { authorization: 'Bearer opsp_secret', accept: 'application/json' },
      password: 'hunter2-hunter2',
    });
    const out = safeErrSerializer(err) as Record<string, unknown>;
    assert.equal(out.type, 'Error');
    assert.equal(out.code, 'E_UPSTREAM');
    assert.equal(out.password, '[redacted]');
    assert.deepEqual(out.headers, { authorization: '[redacted]', accept: 'application/json' });
  });

  it('log a request by path, never its query string, headers or body', () => {
    const out = safeReqSerializer({
      method: 'GET',
      url: '/api/v1/audit?actor=x&token=opsp_abc',
      host: '127.0.0.1:8080',
      ip: '127.0.0.1',
      headers: { cookie: 'opsplane_session=s3cret' },
      body: { password: 'p' },
    });
    assert.deepEqual(out, {
      method: 'GET',
      url: '/api/v1/audit?[redacted]',
      host: '127.0.0.1:8080',
      remoteAddress: '127.0.0.1',
      remotePort: undefined,
    });
  });

  it('apply to any pino logger through withSafeSerializers', () => {
    const lines: string[] = [];
    const base = pino(
      {},
      new Writable({
        write(c: Buffer, _e, done) {
          lines.push(c.toString());
          done();
        },
      }),
    );
    const log = withSafeSerializers(base).child({ component: 'x' });
    log.error({ err: new QueryError('select $1', [HASH], undefined) }, 'request failed');
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]?.includes(HASH), lines[0]);
  });
});
