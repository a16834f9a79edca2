.PHONY: test build demo

# Installs what the tests need (as root) and runs every test.
test:
	./scripts/test.sh

build:
	go build -o bin/petrel ./cmd/petrel

demo: build
	./bin/petrel demo
