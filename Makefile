# The two commands: `make run` (the whole app locally, with a dev mail inbox)
# and `make test` (every test). Everything they need is set up here.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# How long each fuzz target runs, from its seed corpus: a minute for
# `make fuzz`, 50,000 inputs within `make test` (6-13 s each on an idle
# 2-core machine). `make test` counts inputs rather than seconds: with a
# duration, Go's fuzzing coordinator can report its own deadline as a
# failure ("context deadline exceeded", no crasher written) when a busy
# machine keeps a worker from answering before the time is up.
FUZZTIME       ?= 1m
SHORT_FUZZTIME ?= 50000x
# Fuzz targets: package:Target.
FUZZ_TARGETS := \
	./internal/account:FuzzNormalizeEmail \
	./internal/account:FuzzValidatePassword \
	./internal/account:FuzzHashToken \
	./internal/account:FuzzVerifyParse \
	./internal/http:FuzzDecodeForm

.PHONY: run test vet staticcheck unit faults fuzz fuzz-short lint bench build postgres clean

## run: the whole app on http://localhost:8080, the dev inbox on http://localhost:8025
# The binaries are built, then dev is exec'd (not `go run`): Ctrl-C then
# reaches dev alone, which stops web gracefully and exits 0.
run:
	@$(GO) build -o bin/ ./cmd/dev ./cmd/web
	@exec bin/dev

## build: the web binary in bin/
build:
	$(GO) build -o bin/web ./cmd/web

# Each group runs even when one before it failed, so one failure hides
# none of the others' results; the summary names what failed and the exit
# status is non-zero.
TEST_GROUPS := vet staticcheck unit faults fuzz-short

## test: vet, staticcheck, every test with the race detector, the fault suite, short fuzzing
test:
	@failed=""; for g in $(TEST_GROUPS); do \
		echo "== make $$g"; start=$$(date +%s); \
		if $(MAKE) --no-print-directory $$g; then r=ok; else r=FAILED; failed="$$failed $$g"; fi; \
		echo "== make $$g: $$r in $$(( $$(date +%s) - start ))s"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed"; exit 1; fi; \
	echo "make test: all passed"

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

lint: vet staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# Every package but the fault suite, whose loads would skew the timing
# tests of the others (and theirs its own): it runs next, on its own.
unit:
	@scripts/ensure-chromium.sh
	@scripts/ensure-postfix.sh
	@url=$$(scripts/ensure-postgres.sh) && \
	TEST_DATABASE_URL="$$url" $(GO) test -race -timeout 15m $$($(GO) list ./... | grep -v '/internal/faults$$')

## faults: the fault suite (crashes, outages, a slow database, bad input, shutdown)
faults:
	@url=$$(scripts/ensure-postgres.sh) && \
	TEST_DATABASE_URL="$$url" $(GO) test -race -timeout 15m -v ./internal/faults/

# run-fuzz runs every target in FUZZ_TARGETS for $(1) each; a failing
# target does not stop the others, and fails the whole at the end.
define run-fuzz
@url=$$(scripts/ensure-postgres.sh) && failed="" && for t in $(FUZZ_TARGETS); do \
	pkg=$${t%%:*}; name=$${t##*:}; \
	echo "fuzz $$pkg $$name for $(1)"; \
	TEST_DATABASE_URL="$$url" $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(1) $$pkg || failed="$$failed $$name"; \
done; \
if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi
endef

## fuzz: each fuzz target for FUZZTIME (1m)
fuzz:
	$(call run-fuzz,$(FUZZTIME))

## fuzz-short: each fuzz target for SHORT_FUZZTIME (50000 inputs), as `make test` does
fuzz-short:
	$(call run-fuzz,$(SHORT_FUZZTIME))

## bench: the benchmark table (BENCHMARKS.md)
bench:
	@url=$$(scripts/ensure-postgres.sh) && TEST_DATABASE_URL="$$url" $(GO) run ./cmd/bench -notes cmd/bench/missed-goals.md

postgres:
	@scripts/ensure-postgres.sh

clean:
	rm -rf bin test-output
