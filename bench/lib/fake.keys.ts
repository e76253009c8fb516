/** Credentials of the real-path benchmark's fakes, given to the runtime and to the floor client alike. */
export const FAKE_KEYS = {
  openai: 'sk-bench',
  replicate: 'r8-bench',
  wixAppId: 'bench-app',
  wixSecret: 'bench-secret',
};
