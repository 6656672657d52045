# The two commands that matter: `make demo` and `make test`. Both work on a fresh machine.
.PHONY: demo test env-up env-down env-status lint fmt unit e2e build crds release soak

demo:        ## bring up the local environment and show it
	e2e/demo

test:        ## all tests: lint, unit, then end-to-end against the real local environment
	e2e/run-tests

env-up:      ## start micro Ceph + local Kubernetes (idempotent)
	e2e/env up

env-down:    ## stop them
	e2e/env down

env-status:
	e2e/env status

build:
	cargo build --workspace

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:        ## unit tests only (no environment needed)
	cargo test --workspace

e2e:         ## tests that need the environment (brings it up if needed)
	e2e/env up >/dev/null && . $$(e2e/env path) && cargo test --workspace -- --ignored

crds:        ## regenerate crds/, docs/api.md and the chart's copy of the CRDs from the Rust types
	cargo run -q -p rbox-operator -- crd --out crds/ --doc docs/api.md
	rm -f charts/rbox-operator/crds/*.yaml && cp crds/*.yaml charts/rbox-operator/crds/

release:     ## release artefacts in dist/: binaries, the packaged chart, the CRD bundle
	e2e/release

soak:        ## rbox-core under sustained mixed load on its own micro Ceph, OSD restarted once (DURATION=600)
	rbox-core/bench/soak.sh

.PHONY: soak bench-scale
bench-scale: ## operator at scale: 50 MailPools, 50/200/500 DovecotFleets, in its own environment (docs/benchmarks.md)
	RBOX_E2E_DIR=$${RBOX_E2E_DIR:-/tmp/rbox-scale} e2e/bench/scale.sh
