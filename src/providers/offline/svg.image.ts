import type { HeaderImage } from '../../../machines/blog.types';
import { escapeHtml } from '../html';
import type { ImageMaker } from '../image.port';
import { clip } from './offline.templates';
import { assertNotAborted, hashString } from './seed';
import { assertId, storePath, writeFileAtomic } from './store.files';

/** Where the SVG renderer writes; images land under `<dataDir>/published/<instanceId>/images/`. */
export interface SvgImageOptions {
  dataDir: string;
}

const WIDTH = 1200;
const HEIGHT = 630;
const LINE_CHARS = 26; // about what fits at 64px across the 1040px text column
const MAX_LINES = 4;

/** Splits `title` into at most `MAX_LINES` lines of about `LINE_CHARS`, the last one clipped with an ellipsis. */
export function wrapTitle(title: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of title.split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (next.length <= LINE_CHARS || !line) line = next;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  const kept = lines.slice(0, MAX_LINES).map((l) => clip(l, LINE_CHARS + 6));
  if (lines.length > MAX_LINES) kept[MAX_LINES - 1] = clip(`${kept[MAX_LINES - 1] ?? ''} …`, LINE_CHARS + 6);
  return kept;
}

/** `hsl()` as `#rrggbb`: hex works in every SVG renderer, `hsl()` in presentation attributes does not. */
export function hslToHex(h: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const channel = (n: number): string => {
    const k = (n + h / 30) % 12;
    const value = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(value * 255)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

/** A 1200×630 SVG: a diagonal gradient whose hues come from `seed`, soft circles, and the title. */
export function renderSvg(title: string, seed: string): string {
  const hash = hashString(seed);
  const hue = hash % 360;
  const hue2 = (hue + 40 + ((hash >>> 9) % 80)) % 360;
  const lines = wrapTitle(title);
  const lineHeight = 78;
  const top = HEIGHT / 2 - ((lines.length - 1) * lineHeight) / 2 + 20;
  const text = lines.map((l, i) => `<tspan x="80" y="${top + i * lineHeight}">${escapeHtml(l)}</tspan>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img">
<title>${escapeHtml(title)}</title>
<defs><linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="${hslToHex(hue, 0.7, 0.45)}"/><stop offset="1" stop-color="${hslToHex(hue2, 0.75, 0.3)}"/>
</linearGradient></defs>
<rect width="${WIDTH}" height="${HEIGHT}" fill="url(#bg)"/>
<circle cx="${1000 + (hash % 120)}" cy="${110 + ((hash >>> 5) % 90)}" r="220" fill="#fff" fill-opacity="0.08"/>
<circle cx="${140 + ((hash >>> 3) % 160)}" cy="560" r="160" fill="#fff" fill-opacity="0.06"/>
<text font-family="Georgia, 'Times New Roman', serif" font-size="64" font-weight="700" fill="#fff">${text}</text>
</svg>
`;
}

/** An image maker with no network: renders the header as an SVG file next to the store's published pages. */
export function createSvgImageMaker(opts: SvgImageOptions): ImageMaker {
  return {
    name: 'local-svg',
    async createHeaderImage(call): Promise<HeaderImage> {
      assertNotAborted(call.signal);
      assertId('blogId', call.blogId);
      const file = storePath(opts.dataDir, call.instanceId, 'images', `${call.blogId}.svg`);
      // Same blog, same file name: a repeated call overwrites the image instead of adding another.
      await writeFileAtomic(file, renderSvg(call.article.title, call.blogId));
      return { url: `images/${call.blogId}.svg`, alt: clip(`Header image: ${call.article.title}`, 250) };
    },
  };
}
