/**
 * The YAML text of the config files a fleet writes (controller.yaml, agent.yaml, the sample
 * packages' configs; `opsplane demo` also writes platform.yaml with it), with the comment lines
 * the demo puts on top.
 */
import { stringify } from 'yaml';

/** YAML text for `doc` (undefined entries left out), preceded by `comment` lines as `# …`. */
export function toYaml(doc: Readonly<Record<string, unknown>>, comment?: string): string {
  const head = comment
    ? comment
        .split('\n')
        .map((l) => (l ? `# ${l}` : '#'))
        .join('\n') + '\n'
    : '';
  return head + stringify(doc, { lineWidth: 0 });
}
