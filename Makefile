# The two commands of the README. Both install what they need first (scripts/setup.sh).
DATA ?= $(or $(LONGTAIL_DATA),../shared/data/cifar-10-batches-bin)
export LONGTAIL_DATA := $(abspath $(DATA))

.PHONY: setup build demo test lint

setup:
	@scripts/setup.sh

build: setup
	cargo build --release

# A short real run (a few minutes on 2 CPU cores) that ends with the Many/Medium/Few table.
demo: build
	rm -rf runs/demo
	target/release/longtail train --config configs/demo.toml --out runs/demo

# Unit, property and end-to-end tests on the real CIFAR-10.
test: setup
	cargo test --release

lint: setup
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
