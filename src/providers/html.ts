/*
 * Markdown → HTML with `marked` (well kept, fast, no DOM), and sanitizing with `sanitize-html`, pinned to 2.17.5:
 * it is allow-list based and runs on htmlparser2 without a DOM, and 2.17.5 is the last release that still supports
 * Node 20 (2.17.6 and later declare `node >= 22.12`). `xss` was the alternative, but its black-list-ish defaults and
 * lack of an iframe host allow-list would need more hand-written rules.
 */
import { Marked } from 'marked';
import sanitize from 'sanitize-html';

// Our own instance: `marked.use()` elsewhere must not change how posts render.
const markdown = new Marked({ gfm: true, breaks: false });

// Embeds we trust: privacy-friendly players only. Everything else that can run code or post data is dropped.
const IFRAME_HOSTS = ['www.youtube-nocookie.com', 'youtube-nocookie.com', 'player.vimeo.com'];

const OPTIONS: sanitize.IOptions = {
  allowedTags: [...sanitize.defaults.allowedTags, 'img', 'iframe', 'h1', 'h2'],
  allowedAttributes: {
    a: ['href', 'name', 'title', 'target', 'rel'],
    img: ['src', 'alt', 'title', 'width', 'height', 'loading'],
    iframe: ['src', 'title', 'width', 'height', 'allow', 'allowfullscreen', 'frameborder'],
    '*': ['id'],
  },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
  allowedIframeHostnames: IFRAME_HOSTS,
  allowIframeRelativeUrls: false,
  // sanitize-html keeps an iframe whose src it removed; an empty frame is useless, so drop it entirely.
  exclusiveFilter: (frame) => frame.tag === 'iframe' && !frame.attribs['src'],
  transformTags: {
    // Links in generated content open with no access back to the page that opened them.
    a: (tagName, attribs) => ({ tagName, attribs: { ...attribs, rel: 'noopener noreferrer nofollow' } }),
  },
};

/** Removes scripts, styles, event handlers, dangerous URLs, forms, plugins and iframes not on the allow-list. */
export function sanitizeHtml(html: string): string {
  return sanitize(html, OPTIONS);
}

/** Markdown → HTML, already sanitized (raw HTML inside markdown passes through `marked`, so it is never trusted). */
export function renderMarkdown(md: string): string {
  return sanitizeHtml(markdown.parse(md, { async: false }));
}

/** Escapes text for HTML and XML text nodes and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
