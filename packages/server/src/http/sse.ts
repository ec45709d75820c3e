/**
 * Server-Sent Events for the live streams (a deployment's log, a batch's results): the first
 * step of the service's event generator runs before the 200 is sent, so "not found" and "the
 * server is stopping" are ordinary error answers; then each event is written as it comes, a
 * keep-alive comment on idle ticks, and the stream ends with the generator or the client.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface StreamEvent {
  event: string;
  data: unknown;
  /** Written as the SSE id, so clients resume with Last-Event-ID. */
  id?: number;
}

/** Where a stream resumes: `?after=` or the Last-Event-ID header, else the start. */
export function resumeAfter(req: FastifyRequest, after: number | undefined): number {
  const lastEventId = Number(req.headers['last-event-id']);
  return after ?? (Number.isInteger(lastEventId) ? lastEventId : 0);
}

export async function streamEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  open: (signal: AbortSignal) => AsyncGenerator<StreamEvent | 'idle'>,
): Promise<void> {
  const closed = new AbortController();
  req.raw.on('close', () => closed.abort());
  const events = open(closed.signal);
  const first = await events.next();
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  try {
    for (let r = first; !r.done; r = await events.next()) {
      const e = r.value;
      if (e === 'idle') {
        if (!closed.signal.aborted) res.write(': keep-alive\n\n');
        continue;
      }
      res.write(
        `${e.id !== undefined ? `id: ${e.id}\n` : ''}event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`,
      );
    }
  } catch (err) {
    req.log.warn({ err, url: req.url }, 'event stream failed');
  } finally {
    res.end();
  }
}
