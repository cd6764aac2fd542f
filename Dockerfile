# Ovation server image. Build: docker build -t ovation .
# Run: docker run -p 4000:4000 -e JWT_SECRET=... -e DATABASE_URL=postgres://... ovation
# Without DATABASE_URL it keeps an embedded PGlite database in /data (mount a volume there).
# Node 24 is the active LTS; package.json's engines and CI cover 20 and 24
# (test/e2e/production-image.test.ts runs these steps outside Docker).

# 1. Build: every dependency (Prisma CLI, codegen, TypeScript), generated code, dist/.
FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts codegen.yml schema.graphql ./
COPY prisma ./prisma
COPY scripts ./scripts
COPY test/operations ./test/operations
# codegen.yml's other input (the reference apps' documents): without it the install's codegen fails.
COPY apps/live/src/graphql ./apps/live/src/graphql
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Runtime dependencies only. --omit=optional too: @prisma/client names the Prisma CLI and
# TypeScript as optional peers, which --omit=dev alone keeps (~245 MB more).
FROM node:24-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/postinstall.mjs ./scripts/
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# 3. The image: the build, its runtime dependencies and the migrations (applied at start).
FROM node:24-trixie-slim
ENV NODE_ENV=production PORT=4000 DATA_DIR=/data
# V8 sizes its heap from the machine's memory (~4 GB on a large host) and, under a sustained vote
# rush, lets garbage pile up towards that before it compacts: RSS grew by ~20 MB/s while the live
# heap stayed ~100 MB (BENCHMARKS.md, issue 12). A bound makes it collect in time: 10,000 watchers
# need ~400 MB of heap under a rush; at 512 MB major collections ran near the limit and paused the
# loop ~1 s every ~7 s, at 768 MB twice in 20 s with RSS 585 MB. Raise it for larger instances.
# bench/ runs every target with this same value.
ENV NODE_OPTIONS="--max-old-space-size=768"
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY prisma/migrations ./prisma/migrations
# The embedded database and the generated dev secret live in DATA_DIR: writable by the app's user.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
# Follows PORT (and HOST when it names one address) as the server does.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["node", "-e", "const h=process.env.HOST;fetch(`http://${!h||h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?`[${h}]`:h}:${process.env.PORT||4000}/ready`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
