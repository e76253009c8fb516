/** Sample requests for the demo: what store owners of small shops ask for. */
export const TOPICS = [
  'caring for handmade ceramic mugs',
  'choosing a beginner sourdough starter',
  'sustainable packaging for small shops',
  'layering jewelry for everyday wear',
  'indoor plants that survive low light',
  'brewing pour-over coffee at home',
  'training a new puppy in the first month',
  'planning a capsule wardrobe for autumn',
] as const;

export const IDEAS = [
  {
    title: 'Five mistakes people make with cast-iron pans',
    summary: 'What goes wrong, and the quick fixes that save a pan.',
  },
  {
    title: 'How we source our organic cotton',
    summary: 'From farm to shelf: the people and checks behind each shirt.',
  },
  { title: 'A gift guide for people who love tea', summary: 'Ten gifts under fifty dollars, picked by our staff.' },
  { title: 'Why small-batch candles burn cleaner', summary: 'Wax, wicks and fragrance load, explained simply.' },
] as const;
