# The two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run test build vet fuzz bench clean db-stop

## run: start PostgreSQL if needed, migrate, seed a demo tenant, serve on :8080
run: build
	./scripts/run.sh

## test: go vet and the race-enabled test suite against real PostgreSQL
test:
	./scripts/test.sh

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/hubd ./cmd/hubd

vet:
	$(GO) vet ./...

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## db-stop: stop the private PostgreSQL cluster `make run` may have started
db-stop:
	./scripts/pg-ensure.sh stop

clean:
	rm -rf bin
