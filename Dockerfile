# Inkwell runtime image, in three stages: the compiled build, the production dependencies, and the runtime (those
# two and nothing else, as the unprivileged `node` user). Checked here only by `.ci/run`'s build and the dist test:
# this machine has no Docker engine, and `buildah bud` cannot pull node:20-slim (no registry resolves from here).

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY machines ./machines
COPY src ./src
COPY drizzle ./drizzle
RUN npm run build

FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-slim
WORKDIR /app
# HOST=0.0.0.0: inside a container a runtime bound to 127.0.0.1 answers nothing on the published port. Set
# INKWELL_API_TOKEN, or the runtime warns at start that the API is open.
ENV NODE_ENV=production \
    INKWELL_DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=3000
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]

EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The compiled code, no TypeScript loader: what `npm start` runs, without npm. The runtime handles SIGTERM/SIGINT
# itself (drains, exits 0; the preload holds a signal that comes while the code loads); compose adds an init
# process (`init: true`), and `docker run --init` does the same.
CMD ["node", "--require", "./dist/src/runtime/early.signals.cjs", "--enable-source-maps", "dist/src/main.js"]
