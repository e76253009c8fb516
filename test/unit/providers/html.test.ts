import { describe, expect, it } from 'vitest';
import { escapeHtml, renderMarkdown, sanitizeHtml } from '../../../src/providers/html';

describe('sanitizeHtml', () => {
  it('removes script and style tags with their content', () => {
    const out = sanitizeHtml('<p>hi</p><script>alert(1)</script><style>p{color:red}</style>');
    expect(out).toBe('<p>hi</p>');
  });

  it('removes on* event handlers', () => {
    const out = sanitizeHtml('<img src="https://x.test/a.png" onerror="alert(1)"><p onclick="x()">t</p>');
    expect(out).not.toMatch(/onerror|onclick|alert/);
    expect(out).toContain('src="https://x.test/a.png"');
  });

  it('drops javascript: and data: urls from links and images', () => {
    const out = sanitizeHtml(
      '<a href="javascript:alert(1)">a</a><a href="JaVaScRiPt&#58;alert(1)">b</a>' +
        '<a href="data:text/html,<b>x</b>">c</a><img src="data:image/svg+xml,<svg onload=alert(1)>">',
    );
    expect(out).not.toMatch(/javascript|data:|alert/i);
    expect(out).toContain('>a</a>');
  });

  it('keeps iframes from the allow-list and drops foreign ones entirely', () => {
    const ok = '<iframe src="https://www.youtube-nocookie.com/embed/abc"></iframe>';
    const vimeo = '<iframe src="https://player.vimeo.com/video/1"></iframe>';
    const out = sanitizeHtml(`${ok}${vimeo}<iframe src="https://evil.test/x"></iframe><iframe src="/rel"></iframe>`);
    expect(out).toContain('youtube-nocookie.com/embed/abc');
    expect(out).toContain('player.vimeo.com/video/1');
    expect(out).not.toContain('evil.test');
    expect(out.match(/<iframe/g)).toHaveLength(2);
  });

  it('removes object, embed and form', () => {
    const out = sanitizeHtml('<object data="x.swf"></object><embed src="x.swf"><form action="/x"><input></form>ok');
    expect(out).toBe('ok');
  });

  it('keeps normal formatting and safe links', () => {
    const html = '<h2>T</h2><p><strong>b</strong> <em>i</em> <a href="https://x.test/">l</a></p><ul><li>1</li></ul>';
    const out = sanitizeHtml(html);
    expect(out).toContain('<h2>T</h2>');
    expect(out).toContain('<strong>b</strong> <em>i</em>');
    expect(out).toContain('<a href="https://x.test/" rel="noopener noreferrer nofollow">l</a>');
    expect(out).toContain('<ul><li>1</li></ul>');
  });
});

describe('renderMarkdown', () => {
  it('renders headings, lists and emphasis', () => {
    const out = renderMarkdown('# Title\n\n## Part\n\n- one\n- two\n\n1. first\n\nSome **bold** text.');
    expect(out).toContain('<h1>Title</h1>');
    expect(out).toContain('<h2>Part</h2>');
    expect(out).toMatch(/<ul>\s*<li>one<\/li>\s*<li>two<\/li>\s*<\/ul>/);
    expect(out).toMatch(/<ol>\s*<li>first<\/li>\s*<\/ol>/);
    expect(out).toContain('<strong>bold</strong>');
  });

  it('sanitizes raw html embedded in the markdown', () => {
    const out = renderMarkdown(
      'Hi <script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n<img src=x onerror=alert(1)>',
    );
    expect(out).not.toMatch(/<script|onerror|javascript:/);
  });
});

describe('escapeHtml', () => {
  it('escapes the five special characters', () => {
    expect(escapeHtml(`<a href="x">&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
  });
});
