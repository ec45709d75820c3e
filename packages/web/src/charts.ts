/**
 * Charts of an agent's metrics over time (GET /agents/{code}/metrics/history), drawn with uPlot
 * (a small, maintained canvas time-series library): host CPU and memory, load, and per package
 * CPU, memory (RSS) and restarts. Series of different packages are aligned on the union of their
 * sample times; a missing sample is a gap, never a zero. Each chart has a heading and a text
 * summary (latest and peak) for readers who cannot see the canvas.
 */
import uPlot from 'uplot';
import type { MetricsHistory } from '@opsplane/api';
import { fmtBytes, h } from './dom.js';

const PALETTE = ['#1f4fd8', '#d8551f', '#127a3e', '#8a3ffc', '#b42318', '#0e7c86', '#8a5a00'];

export interface SeriesSpec {
  label: string;
  /** Per sample time (seconds): the value, or undefined for no sample. */
  points: Map<number, number>;
}

export interface ChartSpec {
  id: string;
  title: string;
  unit: (v: number) => string;
  series: SeriesSpec[];
  /** Fixed y range (e.g. 0–100 for percentages). */
  range?: [number, number];
}

const sec = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** The charts of a history, each with its series. */
export function chartSpecs(hst: MetricsHistory): ChartSpec[] {
  const pct = (v: number) => `${v.toFixed(1)} %`;
  const sys = (f: (p: MetricsHistory['system'][number]) => number) =>
    new Map(hst.system.map((p) => [sec(p.at), f(p)] as [number, number]));
  const pkg = (f: (p: MetricsHistory['packages'][number]['points'][number]) => number) =>
    hst.packages.map((p) => ({
      label: p.name,
      points: new Map(p.points.map((x) => [sec(x.at), f(x)] as [number, number])),
    }));
  return [
    {
      id: 'chart-host',
      title: 'Host CPU and memory',
      unit: pct,
      range: [0, 100],
      series: [
        { label: 'CPU', points: sys((p) => p.cpu_percent) },
        { label: 'Memory', points: sys((p) => p.memory_used_percent) },
      ],
    },
    {
      id: 'chart-load',
      title: 'Load (1 min)',
      unit: (v) => v.toFixed(2),
      series: [{ label: 'load1', points: sys((p) => p.load1) }],
    },
    { id: 'chart-pkg-cpu', title: 'Package CPU', unit: pct, series: pkg((x) => x.cpu_percent) },
    { id: 'chart-pkg-rss', title: 'Package memory (RSS)', unit: fmtBytes, series: pkg((x) => x.rss_bytes) },
    {
      id: 'chart-pkg-restarts',
      title: 'Package restarts',
      unit: (v) => String(Math.round(v)),
      series: pkg((x) => x.restarts),
    },
  ];
}

/** uPlot's aligned data: the union of sample times, each series with null where it has no sample. */
export function aligned(spec: ChartSpec): uPlot.AlignedData {
  const xs = [...new Set(spec.series.flatMap((s) => [...s.points.keys()]))].sort((a, b) => a - b);
  return [xs, ...spec.series.map((s) => xs.map((x) => s.points.get(x) ?? null))];
}

function summary(spec: ChartSpec): string {
  const parts = spec.series.map((s) => {
    const values = [...s.points.values()];
    if (values.length === 0) return `${s.label}: no samples`;
    return `${s.label} now ${spec.unit(values[values.length - 1] as number)}, peak ${spec.unit(Math.max(...values))}`;
  });
  return parts.join('; ');
}

export interface ChartPanel {
  readonly el: HTMLElement;
  update(h: MetricsHistory): void;
  destroy(): void;
}

/** A grid of charts that redraws in place on update (uPlot.setData), rebuilt when series change. */
export function chartPanel(): ChartPanel {
  const el = h('div', { class: 'charts', id: 'agent-charts' });
  const plots = new Map<string, { plot: uPlot; key: string; caption: HTMLElement }>();
  /** The chart fills its figure (laid out by the grid), within bounds. */
  const widthOf = (fig: HTMLElement) => Math.max(260, Math.min(900, (fig.clientWidth || 480) - 18));
  return {
    el,
    update(hst) {
      const specs = chartSpecs(hst).filter((c) => c.series.length > 0);
      for (const spec of specs) {
        const data = aligned(spec);
        const key = spec.series.map((s) => s.label).join('|');
        const cur = plots.get(spec.id);
        if (cur && cur.key === key) {
          cur.plot.setData(data);
          cur.caption.textContent = summary(spec);
          continue;
        }
        cur?.plot.destroy();
        let box = el.querySelector<HTMLElement>(`#${spec.id}`);
        const caption = h('p', { class: 'muted chart-summary' }, summary(spec));
        const canvas = h('div', {
          class: 'chart-canvas',
          role: 'img',
          'aria-label': `${spec.title}: ${summary(spec)}`,
        });
        const fig = h(
          'figure',
          { class: 'chart', id: spec.id, data: { points: String(data[0].length) } },
          h('figcaption', null, h('h3', null, spec.title), caption),
          canvas,
        );
        if (box) box.replaceWith(fig);
        else el.append(fig);
        box = fig;
        const plot = new uPlot(
          {
            width: widthOf(fig),
            height: 180,
            series: [
              {},
              ...spec.series.map((s, i) => ({
                label: s.label,
                stroke: PALETTE[i % PALETTE.length] as string,
                width: 1.5,
                spanGaps: false,
                value: (_u: uPlot, v: number | null) => (v === null ? '—' : spec.unit(v)),
              })),
            ],
            scales: spec.range ? { y: { range: spec.range } } : {},
            axes: [{}, { values: (_u, vals) => vals.map((v) => spec.unit(v)), size: 70 }],
            legend: { live: true },
          },
          data,
          canvas,
        );
        plots.set(spec.id, { plot, key, caption });
        fig.dataset.points = String(data[0].length);
      }
      for (const fig of el.querySelectorAll<HTMLElement>('figure.chart')) {
        const spec = specs.find((s) => s.id === fig.id);
        if (spec) fig.dataset.points = String(aligned(spec)[0].length);
      }
    },
    destroy() {
      for (const p of plots.values()) p.plot.destroy();
      plots.clear();
    },
  };
}
