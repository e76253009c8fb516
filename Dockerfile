# Inkwell runtime image. `npm start` runs the TypeScript sources with tsx, so dev dependencies stay installed.
FROM node:20-slim

WORKDIR /app
ENV INKWELL_DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=3000

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY . .
RUN mkdir -p /data && chown -R node:node /data
USER node
VOLUME ["/data"]

EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# npm forwards SIGTERM/SIGINT to the runtime, which drains and exits 0.
CMD ["npm", "start"]
