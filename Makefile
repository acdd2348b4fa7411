# Kapacity: build, test and run everything from here. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
STATICCHECK_VERSION := v0.8.2
# Control-plane versions are pinned in test/tools/go.mod (kubernetes, etcd) and test/tools/kwok/go.mod.
KUBE_VERSION := v1.35.4
KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=35 \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=35
KUBE_TOOLS := $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kube-scheduler $(BIN)/kubectl
TOOLS := $(KUBE_TOOLS) $(BIN)/etcd $(BIN)/kwok $(BIN)/prometheus $(BIN)/promtool $(BIN)/protoc $(BIN)/victoria-metrics \
	$(BIN)/chromium $(BIN)/chartgen
CHARTGEN_SOURCES := test/tools/chartgen/go.mod test/tools/chartgen/go.sum \
	$(filter-out %_test.go,$(wildcard test/tools/chartgen/*.go))
# Only the root module's packages; the tool modules under test/tools are not ours to test.
UNIT_PACKAGES = $(shell $(GO) list ./... | grep -v '/test/')
E2E_TIMEOUT ?= 30m
# Run a step and print how long it took, so CI logs show where the time goes.
timed = t0=$$(date +%s); $(2); echo ">>> $(1) took $$(( $$(date +%s) - t0 ))s"

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/kapacity
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-X main.version=$(VERSION) -X main.commit=$(COMMIT)' -o $(BIN)/kapacity .

# The image's platforms: a static binary each, cross-compiled (no cgo, no emulation needed).
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64

.PHONY: image
image: ## Build the OCI image of kapacity (amd64 and arm64) into bin/kapacity-image.tar, without a daemon
	@for p in $(IMAGE_PLATFORMS); do \
		echo "building kapacity for $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)' \
			-o $(BIN)/kapacity-$${p%/*}-$${p#*/} . ; \
	done
	@if [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null; \
	fi
	cd test/tools/image && $(GO) run . -version=$(VERSION) -commit=$(COMMIT) \
		-created=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
		-layout=$(BIN)/image -archive=$(BIN)/kapacity-image.tar \
		-binaries=$$(for p in $(IMAGE_PLATFORMS); do printf '%s=%s,' $$p $(BIN)/kapacity-$${p%/*}-$${p#*/}; done | sed 's/,$$//')

.PHONY: test
test: ## Everything CI checks: lint, generated files current, unit and end-to-end tests
	@$(call timed,tools,$(MAKE) --no-print-directory tools)
	@$(call timed,lint,$(MAKE) --no-print-directory lint)
	@$(call timed,verify-generate,$(MAKE) --no-print-directory verify-generate)
	@$(call timed,test-unit,$(MAKE) --no-print-directory test-unit)
	@$(call timed,test-monitoring,$(MAKE) --no-print-directory test-monitoring)
	@$(call timed,fuzz,$(MAKE) --no-print-directory fuzz)
	@$(call timed,test-e2e,$(MAKE) --no-print-directory test-e2e)
	@# Two test beds side by side (no more than test-e2e runs at once with the demo's): each
	@# suite's output is printed whole when it ends.
	@$(call timed,test-e2e-vm + test-e2e-chart,$(MAKE) --no-print-directory -j2 --output-sync=target test-e2e-vm test-e2e-chart)

.PHONY: test-unit
test-unit: | $(BIN)/kubectl ## Unit tests (no cluster), the CRDs' API-server checks, the Helm chart's lint and template checks
	$(GO) test -count=1 $(UNIT_PACKAGES)
	cd test/tools/codegen && $(GO) test -count=1 ./crdcheck
	cd test/tools/image && $(GO) test -count=1 ./...
	@# helm lint and helm template of every toggle (Helm's SDK), deploy/ current, and kubectl's
	@# kustomize building deploy/ and each component into exactly what the chart renders.
	cd test/tools/chartgen && KUBECTL=$(BIN)/kubectl $(GO) test -count=1 ./...

.PHONY: test-monitoring
test-monitoring: $(BIN)/promtool ## Alert rules checked and unit-tested by promtool; dashboard queries parsed
	$(BIN)/promtool check rules deploy/monitoring/kapacity-rules.yaml
	cd deploy/monitoring && $(BIN)/promtool test rules kapacity-rules_test.yaml
	PROMTOOL=$(BIN)/promtool $(GO) test -count=1 ./deploy/monitoring/

.PHONY: fuzz
fuzz: ## Every fuzz target for FUZZTIME (20s) each, from the corpora checked in under testdata/fuzz
	bash test/fuzz/run.sh

.PHONY: test-e2e
test-e2e: tools ## End-to-end tests on a local cluster (real apiserver, controllers, kwok, Prometheus)
	$(GO) test -count=1 -timeout $(E2E_TIMEOUT) ./test/...

# The suites that read metrics, again on VictoriaMetrics instead of Prometheus.
VM_SUITES := ^Test(Adapter|History|Predicted|Predictive)

.PHONY: test-e2e-vm
test-e2e-vm: tools ## The adapter, history and predictive end-to-end tests on VictoriaMetrics
	KAPACITY_E2E_METRICS_BACKEND=victoriametrics $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -run '$(VM_SUITES)' ./test/e2e/

# The main behaviours again with the adapter and the manager as the Helm chart installs them: its
# rights (the tokens of its ServiceAccounts), its flags, its APIServices and webhooks
# (KAPACITY_E2E_INSTALL=chart, test/e2e/install_test.go). Any suite runs that way with the variable.
CHART_SUITES := ^Test(Install|AdapterPodsMetricScalesDeployment|AdapterExternalMetricScalesDeployment|AdapterWorkloadAggregateScalesDeployment|AdapterServesKubectlTop|AdapterAPIServicesVerifyTheAdapter|HistoryRBAC|ExecutorGrayScaleDownWithCutoff|PredictiveScalesAheadOfRise)

.PHONY: test-e2e-chart
test-e2e-chart: tools ## The main end-to-end behaviours with the components under the chart's ServiceAccounts and flags
	KAPACITY_E2E_INSTALL=chart $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -run '$(CHART_SUITES)' ./test/e2e/

.PHONY: bench
bench: ## Benchmarks (Go testing.B), printed as tables with ratios to baselines of the same run
	$(GO) test -run='^$$' -bench=. -benchmem $(UNIT_PACKAGES)
	# gorgonia as the forecaster's training engine, in a module of its own (its dependency tree stays
	# out of go.mod); compare its ms/step with BenchmarkTrainStep above.
	cd test/tools/gorgoniabench && CGO_ENABLED=0 $(GO) test -run='^$$' -bench=. -benchtime=200x .
	# Fixed iterations on the cluster: percentiles need hundreds of samples, whatever one takes.
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=500x -timeout=$(E2E_TIMEOUT) ./test/...
	# The executor at scale (500 IHPAs over 5,000 kwok pods, about 8 minutes on a bed of its own):
	# one iteration flips every workload; percentiles come from the controllers' histograms.
	$(GO) test -tags scalebench -run='^$$' -bench='^BenchmarkExecutorScale$$' -benchtime=1x -timeout=$(E2E_TIMEOUT) ./test/e2e/

.PHONY: demo
demo: tools build ## Local cluster with everything running; Ctrl-C stops and cleans up
	$(BIN)/kapacity demo --tools-bin $(BIN)

.PHONY: generate
generate: $(BIN)/protoc $(BIN)/chartgen ## Regenerate deepcopy code, CRD manifests, gRPC code, the chart's CRDs and deploy/
	bash test/tools/codegen/generate.sh
	bash test/tools/protogen/generate.sh
	@# After the CRDs: the chart holds copies of them, and deploy/ is rendered from the chart.
	$(BIN)/chartgen generate -root $(CURDIR)

.PHONY: verify-generate
verify-generate: ## Fail if `make generate` changes any generated file
	@paths="config deploy historyapi"; \
		snapshot() { git status --porcelain -- $$paths; git diff -- $$paths | sha256sum; \
		git ls-files --others --exclude-standard -- $$paths | xargs -r cat | sha256sum; }; \
		before=$$(snapshot); $(MAKE) --no-print-directory generate; after=$$(snapshot); \
		if [ "$$before" != "$$after" ]; then git status --short -- $$paths; \
		echo "generated files were stale: 'make generate' changed them; commit the result"; exit 1; fi

.PHONY: lint
lint: $(BIN)/staticcheck ## gofmt, go vet, staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	cd test/tools/chartgen && $(GO) vet ./... && $(BIN)/staticcheck ./...

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: tools
tools: $(TOOLS) ## Build the test bed's control plane (etcd, kube-*, kubectl, kwok, prometheus) and chartgen into bin/

# One go build for all four kube commands so they share compiled packages.
$(KUBE_TOOLS) &: test/tools/go.mod
	@mkdir -p $(BIN)
	cd test/tools && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl

$(BIN)/etcd: test/tools/go.mod test/tools/etcd/main.go
	@mkdir -p $(BIN)
	cd test/tools && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/etcd ./etcd

$(BIN)/kwok: test/tools/kwok/go.mod
	@mkdir -p $(BIN)
	cd test/tools/kwok && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/kwok sigs.k8s.io/kwok/cmd/kwok

# The chart's generator, with Helm's SDK in its own module (helm lint and helm template without a
# helm binary: one build for the generator and the chart's tests).
$(BIN)/chartgen: $(CHARTGEN_SOURCES)
	@mkdir -p $(BIN)
	cd test/tools/chartgen && CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/chartgen .

# Prometheus comes from Debian's package (accepted by the design): building it from modules would
# add minutes to every fresh CI run for no gain. Installed only when missing.
$(BIN)/prometheus $(BIN)/promtool &:
	@mkdir -p $(BIN)
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
		echo "installing Debian's prometheus package"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi
	ln -sf "$$(command -v prometheus)" $(BIN)/prometheus
	ln -sf "$$(command -v promtool)" $(BIN)/promtool

# VictoriaMetrics (single-node) from Debian's package: the scale-out-class backend the adapter,
# history and predictive suites also run against (make test-e2e-vm).
$(BIN)/victoria-metrics:
	@mkdir -p $(BIN)
	@if ! command -v victoria-metrics >/dev/null; then \
		echo "installing Debian's victoria-metrics package"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends victoria-metrics >/dev/null; \
	fi
	ln -sf "$$(command -v victoria-metrics)" $(BIN)/victoria-metrics

# Chromium from Debian's package, for the console's browser tests (chromedp drives it; no driver
# binary is needed).
$(BIN)/chromium:
	@mkdir -p $(BIN)
	@if ! command -v chromium >/dev/null; then \
		echo "installing Debian's chromium package"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	fi
	ln -sf "$$(command -v chromium)" $(BIN)/chromium

# protoc for the gRPC code, from Debian's protobuf-compiler (the generated headers name its version),
# and libprotobuf-dev for the well-known types' .proto files (google/protobuf/duration.proto), which
# protobuf-compiler only recommends.
$(BIN)/protoc:
	@mkdir -p $(BIN)
	@if ! command -v protoc >/dev/null || [ ! -f /usr/include/google/protobuf/duration.proto ]; then \
		echo "installing Debian's protobuf-compiler and libprotobuf-dev packages"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev >/dev/null; \
	fi
	ln -sf "$$(command -v protoc)" $(BIN)/protoc

.PHONY: clean
clean: ## Remove bin/ (the tools are rebuilt by the next `make tools`)
	rm -rf $(BIN)
