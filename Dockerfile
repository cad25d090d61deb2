# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and keep only production dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The "node" dev dependency (the Node 24 binary for local scripts) is not needed here: the image has Node 24.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# Runtime stage: distroless Node 24, non-root, nothing to write (logs go to stdout), so it runs
# with a read-only root filesystem.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY manifests/base/policy.yaml /etc/lb-probe-webhook/policy/policy.yaml
USER 65532:65532
EXPOSE 9443 8080
ENV NODE_ENV=production
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli/main.js"]
CMD ["serve", "--policy=/etc/lb-probe-webhook/policy/policy.yaml", "--tls-cert=/etc/lb-probe-webhook/tls/tls.crt", "--tls-key=/etc/lb-probe-webhook/tls/tls.key"]
