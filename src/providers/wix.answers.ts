/** Reading Wix's answers: the imported image, the post URL, a display name for an import; tolerant JSON. */

/** An image in the store's media, as a draft refers to it. */
export interface WixImage {
  id: string;
  url?: string;
  width?: number;
  height?: number;
}

/** A JSON object (not null, not a primitive). */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Parses stored JSON; undefined for nothing or garbage. */
export function parseJson<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** A display name with an extension Wix can read the type from (`<title>.png`), when the URL has one. */
export function displayNameFor(title: string, url: string): string {
  const ext = /\.(png|jpe?g|gif|webp|svg|avif)(?:$|[?#])/i.exec(new URL(url).pathname)?.[1];
  const name =
    title
      .replace(/[\\/:*?"<>|\s]+/g, ' ')
      .trim()
      .slice(0, 80) || 'header';
  return ext ? `${name}.${ext.toLowerCase()}` : name;
}

/** The image out of an import answer: `file.media.image.image` when present, else the file itself. */
export function importedImage(body: unknown): WixImage | undefined {
  const file = isObject(body) && isObject(body['file']) ? body['file'] : undefined;
  if (!file || typeof file['id'] !== 'string') return undefined;
  const media = isObject(file['media']) && isObject(file['media']['image']) ? file['media']['image'] : undefined;
  const inner = media && isObject(media['image']) ? media['image'] : undefined;
  const image: WixImage = { id: file['id'] };
  const url = inner?.['url'] ?? file['url'];
  if (typeof url === 'string') image.url = url;
  if (typeof inner?.['width'] === 'number') image.width = inner['width'];
  if (typeof inner?.['height'] === 'number') image.height = inner['height'];
  return image;
}

/** `post.url` is a PageUrl `{ base, path }` (some answers give a plain string). */
export function postUrl(body: unknown): string | undefined {
  const post = isObject(body) && isObject(body['post']) ? body['post'] : undefined;
  const url = post?.['url'];
  if (typeof url === 'string' && url) return url;
  if (isObject(url) && typeof url['path'] === 'string') {
    const base = typeof url['base'] === 'string' ? url['base'].replace(/\/+$/, '') : '';
    return `${base}${url['path']}`;
  }
  return undefined;
}
