# The two commands of the README. Both install what they need first (scripts/setup.sh).
# The real CIFAR-10: LONGTAIL_DATA, else ../shared's copy where there is one, else data/ (where
# `make test` downloads it).
SHARED_DATA := ../shared/data/cifar-10-batches-bin
DATA ?= $(or $(LONGTAIL_DATA),$(if $(wildcard $(SHARED_DATA)/data_batch_1.bin),$(SHARED_DATA),data/cifar-10-batches-bin))
export LONGTAIL_DATA := $(abspath $(DATA))

.PHONY: setup build demo test lint data

setup:
	@scripts/setup.sh

build: setup
	cargo build --release

# A short real run (a few minutes on 2 CPU cores) that ends with the Many/Medium/Few table, then
# the best model of the zoo re-measured from its committed weights (docs/zoo.md): the long-tail
# problem, and what a full longtail run does about it.
DEMO_ZOO ?= results/model-16/weights-last.safetensors
demo: build
	rm -rf runs/demo
	target/release/longtail train --config configs/demo.toml --out runs/demo
	@echo
	@echo "The best model of the zoo, $(DEMO_ZOO) (the report's model 16: ResLT head and ResLT exits,"
	@echo "AutoAugment, 200 epochs at rho = 10), re-measured on the same test set from its committed weights:"
	target/release/longtail eval $(DEMO_ZOO)

# The real CIFAR-10 for the tests that need it: found, downloaded, or a line saying what to do.
data: setup
	@scripts/data.sh "$(LONGTAIL_DATA)"

# Unit, property and end-to-end tests: most on a synthetic CIFAR-10 the tests write themselves,
# those whose point is the real release (subsets, MD5s, learning on real images) on it.
test: data
	cargo test --release

lint: setup
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
