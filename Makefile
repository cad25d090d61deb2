# lb-probe-webhook. `make help` lists the targets. Every target runs on the Node.js that `npm ci`
# installs into node_modules (package "node", Node 24), through npm scripts.
SHELL := bash
IMAGE ?= lb-probe-webhook:0.1.0
NPM := npm

.DEFAULT_GOAL := help

node_modules: package.json package-lock.json
	$(NPM) ci
	@touch node_modules

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: node_modules ## Compile TypeScript to dist/
	$(NPM) run build

.PHONY: test
test: node_modules ## Run every test: unit, CLI, TLS and the real control plane (what CI runs)
	$(NPM) test

.PHONY: test-unit
test-unit: node_modules ## Run the unit, CLI and TLS tests only
	$(NPM) run test:unit

.PHONY: test-conformance
test-conformance: node_modules ## Run the cloud conformance suite alone (Azure's and AWS's own probe code)
	$(NPM) run test:conformance

.PHONY: lint
lint: node_modules ## Type-check and lint
	$(NPM) run lint

.PHONY: verify
verify: lint test ## Everything CI checks, and the linter

.PHONY: controlplane
controlplane: ## Build (or reuse) kube-apiserver, kubectl and etcd for the tests
	bash test/e2e/controlplane/build.sh

.PHONY: helm
helm: ## Build (or reuse) the helm CLI and the prometheus-operator and cert-manager CRDs for the tests
	bash test/helm/build.sh

.PHONY: helm-lint
helm-lint: helm ## helm lint --strict the chart in charts/lb-probe-webhook
	"$$(bash test/helm/build.sh --print | sed -n 's/^HELM=//p')" lint --strict charts/lb-probe-webhook

.PHONY: chart
chart: helm ## Package the chart into dist/ (lb-probe-webhook-VERSION.tgz)
	"$$(bash test/helm/build.sh --print | sed -n 's/^HELM=//p')" package charts/lb-probe-webhook --destination dist

.PHONY: certs
certs: build ## Generate a CA and a localhost serving certificate in certs/
	node_modules/.bin/node dist/cli/main.js certs --out certs --dns localhost --ip 127.0.0.1

.PHONY: run
run: node_modules ## Start the webhook locally with the default policy and generated certificates
	$(NPM) start

.PHONY: demo
demo: node_modules ## As root: a real node, the chart from the image built here, the real istiod and an Istio Gateway; Ctrl-C cleans up
	$(NPM) run demo

BASE_IMAGE ?=

.PHONY: image
image: node_modules ## Build $(IMAGE) from the Dockerfile (Docker engine, else buildah); BASE_IMAGE=local: base made from Debian packages
	BASE_IMAGE='$(BASE_IMAGE)' bash image/build.sh '$(IMAGE)'


.PHONY: clean
clean: ## Remove build output and coverage
	rm -rf dist coverage
