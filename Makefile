# The two commands: `make run` (the whole app locally, with a dev mail inbox)
# and `make test` (every test). Everything they need is set up here.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10s
# Fuzz targets run by `make test` for a short seeded time: package:Target.
FUZZ_TARGETS := \
	./internal/account:FuzzNormalizeEmail \
	./internal/account:FuzzValidatePassword \
	./internal/account:FuzzHashToken \
	./internal/account:FuzzVerifyParse \
	./internal/http:FuzzDecodeForm

.PHONY: run test vet staticcheck unit fuzz lint bench build postgres clean

## run: the whole app on http://localhost:8080, the dev inbox on http://localhost:8025
run:
	$(GO) run ./cmd/dev

## build: the web binary in bin/
build:
	$(GO) build -o bin/web ./cmd/web

## test: vet, staticcheck, every test with the race detector, short fuzzing
test: vet staticcheck unit fuzz

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

lint: vet staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

unit:
	@scripts/ensure-chromium.sh
	@url=$$(scripts/ensure-postgres.sh) && \
	TEST_DATABASE_URL="$$url" $(GO) test -race -timeout 15m ./...

fuzz:
	@url=$$(scripts/ensure-postgres.sh) && for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		TEST_DATABASE_URL="$$url" $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

## bench: the benchmark table (BENCHMARKS.md)
bench:
	@url=$$(scripts/ensure-postgres.sh) && TEST_DATABASE_URL="$$url" $(GO) run ./cmd/bench -notes cmd/bench/missed-goals.md

postgres:
	@scripts/ensure-postgres.sh

clean:
	rm -rf bin test-output
