# syntax=docker/dockerfile:1
# registry-mirror: pull-through caching mirror for OCI registries.
#   docker build -t registry-mirror .
#   docker run -p 5000:5000 -v mirror-data:/data registry-mirror

# ---- build: compile TypeScript with the dev dependencies, and the native addons (src/native)
# with the full node image's C compiler and the Node headers it ships. The runtime image below
# is the same Debian release, so the addon links against the same glibc.
FROM node:26 AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY mirror.config.json mirror.config.schema.json ./
RUN npm ci --ignore-scripts && npx tsc -p tsconfig.build.json && node src/native/build-native.mjs \
  && test -f dist/native/sendfile.node && test -f dist/native/malloc-tuning.node

# ---- runtime: production dependencies and compiled code only
FROM node:26-slim
ENV NODE_ENV=production \
    MIRROR_CONFIG=/etc/registry-mirror/mirror.config.json \
    MIRROR_CACHE_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY mirror.config.schema.json ./
COPY mirror.config.json /etc/registry-mirror/mirror.config.json
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 5000
# With "tls" configured, set MIRROR_HEALTHCHECK_URL=https://127.0.0.1:5000/healthz; the check is
# to loopback, so it does not verify the certificate (which names the public host anyway).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const u = process.env.MIRROR_HEALTHCHECK_URL || 'http://127.0.0.1:' + (process.env.MIRROR_PORT || 5000) + '/healthz'; if (u.startsWith('https:')) process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; fetch(u).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=4", "dist/main.js"]
CMD ["serve"]
