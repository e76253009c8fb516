/** A hand-written SVG of horizontal bar panels: no dependency, readable in any browser or on GitHub. */

/** One bar: its label, value and the unit shown after the value. */
export interface Bar {
  label: string;
  value: number;
  unit: string;
  /** Bars of one series share a colour. */
  series?: number;
}

/** A titled group of bars drawn on its own scale. */
export interface Panel {
  title: string;
  bars: Bar[];
}

const COLOURS = ['#2f6fdf', '#e07b24', '#3a9d5d', '#8d5fd3'];
const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders `panels` one under the other. */
export function renderChart(title: string, subtitle: string, panels: Panel[]): string {
  const width = 760;
  const labelW = 250;
  const barMax = width - labelW - 120;
  const rowH = 22;
  const parts: string[] = [];
  let y = 56;
  for (const panel of panels) {
    parts.push(`<text x="16" y="${y}" font-weight="bold">${escape(panel.title)}</text>`);
    y += 10;
    const max = Math.max(...panel.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), 1e-9);
    for (const bar of panel.bars) {
      const value = Number.isFinite(bar.value) ? bar.value : 0;
      const w = Math.max(1, (value / max) * barMax);
      const colour = COLOURS[(bar.series ?? 0) % COLOURS.length]!;
      parts.push(
        `<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${escape(bar.label)}</text>`,
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${colour}"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}">${escape(format(value))} ${escape(bar.unit)}</text>`,
      );
      y += rowH;
    }
    y += 24;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="22" font-size="16" font-weight="bold">${escape(title)}</text>`,
    `<text x="16" y="40" fill="#555">${escape(subtitle)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function format(x: number): string {
  if (x >= 100) return String(Math.round(x));
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
