import type { Idea } from '../../../machines/blog.types';
import { pick, shuffle } from './seed';

/** What the templates are filled with. */
export interface WritingContext {
  topic: string;
  keywords: readonly [string, ...string[]];
  tone: string;
  random: () => number;
}

// Used when a request has no keywords, so every template still reads naturally.
const FALLBACK_KEYWORDS = ['quality', 'everyday use', 'good value'] as const;

/** Cuts `text` at a word boundary so it fits in `max` characters. */
export function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** Capitalizes the first letter only, leaving brand names and acronyms as they are. */
export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The request's keywords, cleaned, or neutral ones when none were given. */
export function keywordsOf(keywords: readonly string[]): [string, ...string[]] {
  const clean = [...new Set(keywords.map((k) => clip(k, 40)).filter((k) => k.length > 0))];
  const [first, ...rest] = clean.length > 0 ? clean : [...FALLBACK_KEYWORDS];
  return [first ?? 'quality', ...rest];
}

type IdeaTemplate = (c: WritingContext, topic: string) => Idea;

const IDEA_TEMPLATES: readonly IdeaTemplate[] = [
  (c, t) => ({
    title: `A Practical Guide to ${t}`,
    summary: `Everything a newcomer needs to know about ${c.topic}, step by step.`,
  }),
  (c, t) => ({
    title: `${3 + Math.floor(c.random() * 5)} Common Mistakes with ${t} (and How to Avoid Them)`,
    summary: `The pitfalls we see most often around ${c.topic}, and simple fixes for each of them.`,
  }),
  (c, t) => ({
    title: `Why ${capitalize(c.keywords[0])} Matters More Than You Think for ${t}`,
    summary: `How ${c.keywords[0]} shapes the results you get from ${c.topic}, with concrete examples.`,
  }),
  (c, t) => ({
    title: `${t}: What Has Changed and What Hasn't`,
    summary: `A look at how ${c.topic} has evolved, and the fundamentals that still hold.`,
  }),
  (c, t) => ({
    title: `Getting Started with ${t}: Your First Week`,
    summary: `A calm, day-by-day plan to go from curious to confident with ${c.topic}.`,
  }),
  (c, t) => ({
    title: `The Questions Customers Ask Most About ${t}`,
    summary: `Straight answers to the questions we hear every week about ${c.topic}.`,
  }),
  (c, t) => ({
    title: `${capitalize(c.keywords[1] ?? c.keywords[0])} and ${t}: A Closer Look`,
    summary: `Where ${c.keywords[1] ?? c.keywords[0]} fits into ${c.topic}, and what it means for you.`,
  }),
  (c, t) => ({
    title: `Behind the Scenes: How We Think About ${t}`,
    summary: `The choices and trade-offs behind our approach to ${c.topic}.`,
  }),
];

/** 3 to 5 distinct ideas for the context's topic. */
export function writeIdeas(c: WritingContext): Idea[] {
  const topic = capitalize(clip(c.topic, 120));
  const count = 3 + Math.floor(c.random() * 3);
  return shuffle(c.random, IDEA_TEMPLATES)
    .slice(0, count)
    .map((template) => template(c, topic))
    .map((idea) => ({ title: clip(idea.title, 200), summary: clip(idea.summary, 2000) }));
}

/** An opening line in the requested tone; unknown tones get a neutral one. */
function opener(c: WritingContext): string {
  const tone = c.tone.toLowerCase();
  if (/friend|casual|warm|playful|fun/.test(tone)) return `Let's be honest: ${c.topic} can feel like a lot at first.`;
  if (/formal|profession|expert|author/.test(tone))
    return `${capitalize(c.topic)} deserves a careful, structured look.`;
  return pick(c.random, [
    `${capitalize(c.topic)} comes up in almost every conversation we have with customers.`,
    `There is more to ${c.topic} than meets the eye.`,
  ]);
}

const WHY = [
  (t: string) =>
    `Getting ${t} right saves time, money and a fair amount of frustration. Small decisions made early tend to compound, and the difference between a good result and a disappointing one is rarely luck.`,
  (t: string) =>
    `People who invest a little attention in ${t} usually notice the benefit within weeks. It is less about spending more and more about choosing well and staying consistent.`,
] as const;

/** A `###` section about one keyword. */
function keySection(c: WritingContext, kw: string): string {
  const t = c.topic;
  const text = pick(c.random, [
    `When it comes to ${kw}, the best advice is to start simple. Pay attention to how ${kw} affects your day-to-day experience with ${t}, note what works, and adjust one thing at a time so you can tell what made the difference.`,
    `Much of what people enjoy about ${t} comes down to ${kw}. A little reading, a conversation with someone experienced, and a few honest experiments will teach you more than any single review.`,
    `${capitalize(kw)} is often overlooked, yet it is one of the clearest signals of quality in ${t}. Ask specific questions about it, compare a few options side by side, and trust what you observe over what a label promises.`,
  ]);
  return `### ${capitalize(kw)}\n\n${text} Over time, ${kw} becomes second nature rather than a checklist item.`;
}

/** The article body in markdown: intro, why, steps, one section per keyword, mistakes, conclusion. */
export function writeBody(c: WritingContext, idea: Idea): string {
  const t = c.topic;
  const k = c.keywords;
  const intro = `${opener(c)} ${idea.summary ? `${idea.summary} ` : ''}In this post we walk through what matters, what to try first, and what to leave for later, so that you can make confident choices without wading through endless opinions.`;
  // Always three focus sections, padded with neutral keywords, so short requests still get a full article.
  const keySections = [...new Set([...k, ...FALLBACK_KEYWORDS])].slice(0, 3).map((kw) => keySection(c, kw));
  // No `# title` line: every store shows the post title itself, above the body.
  return [
    intro,
    `It is easy to overcomplicate ${t}. The good news is that a handful of habits cover most of what you need, and the rest can be learned along the way.`,
    `## Why ${capitalize(t)} Matters`,
    pick(c.random, WHY)(t),
    `## Getting the Basics Right`,
    `Before anything else, take a few minutes to set yourself up well:`,
    `1. Decide what you actually want from ${t}, in one sentence.\n2. Set a realistic budget and timeline.\n3. Try one option for long enough to judge it fairly.\n4. Write down what you learn, so the next decision is easier.`,
    `None of these steps are glamorous, but together they remove most of the guesswork.`,
    `## Key Ideas to Keep in Mind`,
    ...keySections,
    `## Common Mistakes to Avoid`,
    `- Changing too many things at once, which makes it impossible to see what helped.\n- Following trends without checking whether they fit your situation.\n- Giving up before ${t} has had a fair chance to show results.`,
    `## Wrapping Up`,
    `${capitalize(t)} does not have to be complicated. Start with the basics, focus on ${k[0]}, and build from there. If you have questions, our team is always happy to help, and we would love to hear what worked for you.`,
  ].join('\n\n');
}
