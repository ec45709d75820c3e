/**
 * The filters of GET /agents with the Go controller's semantics (its `listAgents` in
 * `pkg/controller/registry_manager.go` builds a MongoDB query): `address` and `hostname` are
 * regular expressions matched case-insensitively anywhere in the value (`$regex` with option
 * `i`), so `web` finds `prod-WEB-01` and `^10\.1\.` an address prefix; every other filter is an
 * exact match.
 *
 * The patterns come from callers, so they run on RE2 (re2js): matching takes time linear in the
 * input whatever the pattern, so no pattern can hang the controller (MongoDB's PCRE could
 * backtrack for ages on `(a+)+$`). Patterns are at most 256 characters (the query schema);
 * RE2 has no backreferences or lookaround, so such a pattern — or any invalid one — is a 400
 * naming the filter (the Go controller answered 500).
 */
import { RE2JS } from 're2js';
import { OpsplaneError, type Agent, type AgentFilterKey, type AgentFilters } from '@opsplane/models';

/** Filters whose value is a case-insensitive regular expression, as in Go. */
export const REGEX_FILTER_KEYS: readonly AgentFilterKey[] = ['address', 'hostname'];

type Test = (value: string | undefined) => boolean;

export class AgentFilter {
  private constructor(private readonly tests: readonly (readonly [AgentFilterKey, Test])[]) {}

  /** Compiles the filters; throws a 400 `validation_failed` for a pattern RE2 cannot run. */
  static compile(filters: AgentFilters): AgentFilter {
    const tests: [AgentFilterKey, Test][] = [];
    for (const [key, value] of Object.entries(filters) as [AgentFilterKey, string | undefined][]) {
      if (value === undefined || value === '') continue;
      if (REGEX_FILTER_KEYS.includes(key)) {
        let re: RE2JS;
        try {
          re = RE2JS.compile(value, RE2JS.CASE_INSENSITIVE);
        } catch (err) {
          throw new OpsplaneError(
            'validation_failed',
            `${key}: not a regular expression this controller can run (RE2 syntax, no backreferences or lookaround): ${(err as Error).message}`,
          );
        }
        tests.push([key, (v) => v !== undefined && re.matcher(v).find()]);
      } else {
        tests.push([key, (v) => v === value]);
      }
    }
    return new AgentFilter(tests);
  }

  /** True when no filter is set. */
  get empty(): boolean {
    return this.tests.length === 0;
  }

  /** Whether a record matches every filter; `get` reads a filter key's value from it. */
  matches(get: (key: AgentFilterKey) => string | undefined): boolean {
    return this.tests.every(([key, test]) => test(get(key)));
  }

  /** Whether an agent in its wire shape matches every filter. */
  matchesAgent(a: Agent): boolean {
    return this.matches((key) => agentFilterValue(a, key));
  }
}

/** The value a filter key compares against in the wire shape (`area` is `area_id`). */
export function agentFilterValue(a: Agent, key: AgentFilterKey): string | undefined {
  switch (key) {
    case 'area':
      return a.area_id;
    default:
      return a[key];
  }
}
