/* The store owner's tools in the dashboard: the blogs awaiting a selection (per store, oldest first) with their ideas
 * and a Pick button each, and a Cancel button for an unfinished blog's timeline. Everything goes through the same
 * API as any client (`api` adds the token); the page refreshes this panel whenever a status event arrives. */
/* global document, window */

import { FINAL as FINAL_STATUSES } from './statuses.js';

const FINAL = new Set(FINAL_STATUSES);

/** Sends a blog command; alerts on failure. Resolves true when it was accepted. */
async function command(api, blog, name, extra = {}) {
  try {
    await api(`/api/blogs/${encodeURIComponent(blog.blogId)}/${name}`, {
      method: 'POST',
      body: JSON.stringify({ instanceId: blog.instanceId, ...extra }),
    });
    return true;
  } catch (err) {
    window.alert(`${name} failed: ${err.message}`);
    return false;
  }
}

/** Draws the awaiting-selection panel into `#awaiting`. */
export async function renderAwaiting({ api, el, blogLink, onChange }) {
  const { items } = await api('/api/blogs?status=AWAITING_SELECTION&limit=200');
  const byStore = new Map();
  for (const blog of [...items].sort((a, b) => a.createdAt.localeCompare(b.createdAt))) {
    byStore.set(blog.instanceId, [...(byStore.get(blog.instanceId) ?? []), blog]);
  }
  const pick = async (button, blog, ideaIndex) => {
    button.disabled = true;
    if (await command(api, blog, 'select', { ideaIndex })) button.textContent = 'Picked';
    else button.disabled = false;
    onChange();
  };
  const panel = document.getElementById('awaiting');
  panel.replaceChildren(
    ...[...byStore]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([store, blogs]) =>
        el(
          'div',
          { class: 'awaiting-store', 'data-awaiting-store': store },
          el('h3', {}, store),
          ...blogs.map((blog) =>
            el(
              'div',
              { class: 'awaiting-blog', 'data-awaiting': blog.blogId },
              blogLink(blog.blogId, blog.instanceId),
              el(
                'ol',
                { class: 'ideas' },
                ...(blog.ideas ?? []).map((idea, i) =>
                  el(
                    'li',
                    { 'data-idea': i },
                    el('b', {}, idea.title),
                    idea.summary ? el('span', { class: 'muted' }, ` ${idea.summary}`) : null,
                    ' ',
                    el(
                      'button',
                      { type: 'button', class: 'pick', onclick: (e) => void pick(e.target, blog, i) },
                      'Pick',
                    ),
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
  );
  document.getElementById('awaiting-empty').hidden = items.length > 0;
}

/** A Cancel button for a blog whose latest status is `status`, or null once it has ended. */
export function cancelButton({ api, el, onChange }, blog, status) {
  if (FINAL.has(status)) return null;
  return el(
    'button',
    {
      type: 'button',
      class: 'cancel',
      onclick: async (e) => {
        e.target.disabled = true;
        if (await command(api, blog, 'cancel')) e.target.textContent = 'Cancelling…';
        else e.target.disabled = false;
        onChange();
      },
    },
    'Cancel',
  );
}
