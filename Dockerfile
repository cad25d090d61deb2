# syntax=docker/dockerfile:1
# The webhook's image: `make image` builds it (README, "The container image").
#
# BUILD_IMAGE and BASE_IMAGE default to the public Node and distroless images. Where those cannot
# be pulled, `make image BASE_IMAGE=local` passes images of the same layout that image/base.sh
# assembles from Debian packages; the recipe below is the same either way.
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG BASE_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# Build stage: compile TypeScript and keep only production dependencies.
FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the "node" dev dependency (a Node 24 binary for local scripts) is not needed
# here, the image has Node 24. The cache mount keeps downloaded packages between builds. Behind a
# TLS-intercepting proxy, pass its CA as the secret npm-ca (`--secret id=npm-ca,src=FILE`;
# `make image` does when NODE_EXTRA_CA_CERTS is set); it is read for this step only.
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=npm-ca \
    if [ -f /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Then only what Node loads at run time: no dev dependencies, no TypeScript declarations, source
# maps or docs (a third of @kubernetes/client-node's 65 MB).
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
    && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \) -delete \
    && find node_modules -type d -empty -delete

# Runtime stage: distroless Node 24, non-root, nothing to write (logs go to stdout), so it runs
# with a read-only root filesystem.
FROM ${BASE_IMAGE}
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
