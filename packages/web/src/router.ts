/**
 * Hash routing (`#/agents/<code>?page=2`): matches the hash against the route table, tears the
 * previous page down (its timers, event streams) and mounts the next one. Pages get a context
 * with their URL parameters, the query, cleanup registration and `poll()` — refresh every few
 * seconds while the tab is visible, never two loads at once.
 */

export interface Poller {
  /** Loads now (or right after the load in flight). */
  refresh(): Promise<void>;
  stop(): void;
}

export interface PageContext {
  /** Where the page renders. */
  readonly root: HTMLElement;
  /** The route pattern's captured groups, URI-decoded. */
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  /** False once the user has left the page. */
  readonly active: boolean;
  onCleanup(fn: () => void): void;
  /** Runs `load` now and every `ms` while the page is shown and the tab visible. */
  poll(load: () => Promise<void>, ms?: number): Poller;
  /** Rewrites the query in the address bar without reloading the page (filters, paging). */
  setQuery(query: URLSearchParams): void;
}

export interface Route {
  pattern: RegExp;
  render(ctx: PageContext): void;
  /** Shown without a session (the login page). */
  public?: boolean;
  /** The nav entry to highlight. */
  nav?: string;
  title: string;
}

export interface Location {
  path: string;
  query: URLSearchParams;
}

export function currentLocation(): Location {
  const raw = location.hash.replace(/^#/, '') || '/';
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  return { path: path || '/', query: new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)) };
}

export function navigate(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

/** `#/path?query` for a path and query values (empty values left out). */
export function link(path: string, query: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

class Mounted implements PageContext {
  active = true;
  private readonly cleanups: (() => void)[] = [];
  constructor(
    readonly root: HTMLElement,
    readonly params: readonly string[],
    readonly query: URLSearchParams,
    private readonly path: string,
  ) {}

  onCleanup(fn: () => void): void {
    this.cleanups.push(fn);
  }

  setQuery(query: URLSearchParams): void {
    const s = query.toString();
    history.replaceState(null, '', `#${this.path}${s ? `?${s}` : ''}`);
  }

  poll(load: () => Promise<void>, ms = 5000): Poller {
    let running: Promise<void> | undefined;
    let again = false;
    let stopped = false;
    const run = async (): Promise<void> => {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        do {
          again = false;
          if (!this.active || stopped) break;
          await load().catch((e: unknown) => console.warn('refresh failed', e));
        } while (again);
      })().finally(() => {
        running = undefined;
      });
      return running;
    };
    const tick = () => {
      if (document.visibilityState === 'visible' && !running) void run();
    };
    const timer = setInterval(tick, ms);
    document.addEventListener('visibilitychange', tick);
    const stop = () => {
      stopped = true;
      clearInterval(timer);
      document.removeEventListener('visibilitychange', tick);
    };
    this.onCleanup(stop);
    void run();
    return { refresh: run, stop };
  }

  unmount(): void {
    this.active = false;
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch (e) {
        console.warn('cleanup failed', e);
      }
    }
  }
}

export interface RouterHooks {
  /** Prepares the frame for the route (header, session) and returns where the page renders. */
  frame(route: Route | undefined, loc: Location): Promise<HTMLElement | undefined>;
  notFound(root: HTMLElement, loc: Location): void;
  /** Runs after a page rendered, with its context (e.g. to poll what the frame shows). */
  mounted?(ctx: PageContext, route: Route): void;
}

let mounted: Mounted | undefined;

/** Stops the current page (its timers and streams), e.g. before the session ends. */
export function leavePage(): void {
  mounted?.unmount();
  mounted = undefined;
}

export function startRouter(routes: readonly Route[], hooks: RouterHooks): void {
  let seq = 0;
  const show = async () => {
    const my = ++seq;
    leavePage();
    const loc = currentLocation();
    let route: Route | undefined;
    let match: RegExpExecArray | null = null;
    for (const r of routes) {
      match = r.pattern.exec(loc.path);
      if (match) {
        route = r;
        break;
      }
    }
    const root = await hooks.frame(route, loc);
    if (my !== seq || !root) return; // navigated again meanwhile, or redirected
    if (!route || !match) {
      document.title = 'Not found · Opsplane';
      hooks.notFound(root, loc);
      return;
    }
    document.title = `${route.title} · Opsplane`;
    const params = match.slice(1).map((p) => decode(p ?? ''));
    mounted = new Mounted(root, params, loc.query, loc.path);
    route.render(mounted);
    hooks.mounted?.(mounted, route);
  };
  window.addEventListener('hashchange', () => void show());
  void show();
}
