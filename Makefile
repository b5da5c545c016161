# UVWebSocket: the two commands a new machine needs are `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
# Cross-module optimisation for release builds, here rather than in
# Package.swift's unsafeFlags, so that embedders choose their own flags.
# DWARF 4 for the C target (clang's default is 5, which Debian 12's valgrind
# cannot read: make bench-instructions runs the server under callgrind).
RELEASE_FLAGS := -c release -Xswiftc -cross-module-optimization -Xcc -gdwarf-4
ECHO_SERVER := .build/release/echo-server
AUTOBAHN_CLIENT := .build/release/autobahn-client
CHAT_SERVER := .build/release/chat-server
CHAT_PORT ?= 5001
WS_BENCH := Benchmarks/.build/release/ws-bench
PORT ?= 5000

.PHONY: docs chat build-chat bench-async bench-loadgen bench-pubsub bench-files bench-tls bench-compression help run tls-cert build build-client deps test-deps test swift-test interop autobahn fuzz tsan safety-release soak bench bench-loops bench-quick bench-micro bench-check bench-instructions bench-deps ws-bench clean asan

# A bare `make` explains itself instead of starting anything.
.DEFAULT_GOAL := help

## Lists these targets with what each does.
help:
	@awk '/^## / { text = substr($$0, 4); next } \
	     /^[a-z][a-z-]*:/ && text { split($$0, t, ":"); printf "  make %-19s %s\n", t[1], text } \
	     !/^# / { text = "" }' $(MAKEFILE_LIST)

## Installs what is missing, builds release, serves the sample on http://localhost:5000/ (PORT=, ARGS=).
run: deps build
	$(ECHO_SERVER) --host localhost --port $(PORT) $(ARGS)

deps:
	@bash scripts/install-deps.sh run

## Makes a local CA and a certificate for localhost in .tls/ (for make run ARGS="--tls-cert .tls/server.pem --tls-key .tls/server.key").
tls-cert: deps
	bash scripts/make-tls-cert.sh .tls

## Builds the sample server (release).
build:
	@bash scripts/release-fresh.sh .build Sources Package.swift
	$(SWIFT) build $(RELEASE_FLAGS) --product echo-server

build-client: build
	$(SWIFT) build $(RELEASE_FLAGS) --product autobahn-client

build-chat: build
	$(SWIFT) build $(RELEASE_FLAGS) --product chat-server

## The chat sample on http://localhost:5001/ (CHAT_PORT=, ARGS=; REDIS=1 starts a redis-server of its own on a free port and shares rooms through it, REDIS_URL=redis://... uses one already running).
chat: deps build-chat
	@bash scripts/install-deps.sh chat
	@bash scripts/run-chat.sh $(abspath $(CHAT_SERVER)) $(CHAT_PORT) "$(REDIS)" "$(REDIS_URL)" $(ARGS)

test-deps:
	@bash scripts/install-deps.sh test
	@bash scripts/setup-python.sh

## Every test (about 45 minutes): layering, Swift tests (and ThreadSanitizer), the DocC build (docs), the allocation budgets (bench-check), Python websockets, Chromium, nginx, Autobahn.
# Swift unit and integration tests, then the external peers (Python
# websockets, headless Chromium, nginx) and Autobahn|Testsuite.
test: test-deps build build-client build-chat ws-bench
	bash scripts/check-layers.sh
	$(SWIFT) test
	$(MAKE) --no-print-directory docs
	$(MAKE) --no-print-directory bench-check
	$(MAKE) --no-print-directory tsan
	SOAK_SECONDS=30 $(MAKE) --no-print-directory soak
	$(MAKE) --no-print-directory interop
	$(MAKE) --no-print-directory autobahn

## The DocC documentation of every library module (.build/plugins/Swift-DocC/outputs/); fails on any DocC warning.
docs: deps
	SWIFT=$(SWIFT) bash scripts/build-docs.sh

## Only the Swift tests (swift test).
swift-test: deps
	$(SWIFT) test

## Only the external-peer tests (pytest; needs make test-deps and the release builds).
interop:
	ECHO_SERVER=$(abspath $(ECHO_SERVER)) CHAT_SERVER=$(abspath $(CHAT_SERVER)) WS_BENCH=$(abspath $(WS_BENCH)) .venv/bin/python -m pytest -q Tests/Interop

## Builds ws-bench, the load generator (also the tests' 15,000-connection client).
ws-bench:
	cd Benchmarks && bash ../scripts/release-fresh.sh .build Sources ../Sources ../Package.swift Package.swift
	cd Benchmarks && $(SWIFT) build $(RELEASE_FLAGS) --product ws-bench

## Autobahn|Testsuite, all 517 cases, both roles, with and without compression, and 1-10 over wss://; fails on anything not OK.
# Without compression: the fuzzing client against echo-server with the default
# read size (sections 12 and 13, permessage-deflate, must be declined cleanly),
# and with the smallest (256 B), where frames straddle reads and partial
# headers wait in a connection's leftover ring; sections 1-10 against the
# async face's echo (--async); the fuzzing server against
# autobahn-client; sections 1-10 again over wss:// (a certificate made for
# the run). With --compression, every case in both roles: those two
# runs go side by side, since each is paced by wstest's Python (about 10
# minutes alone) and uses about one core between it and our end.
autobahn:
	AUTOBAHN_CASES='["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.*", "13.*"]' \
	    bash Tests/Autobahn/run.sh $(abspath $(ECHO_SERVER)) --expect 517 --declined
	AUTOBAHN_OUT=autobahn-256 AUTOBAHN_SERVER_ARGS="--receive-buffer-size 256" bash Tests/Autobahn/run.sh $(abspath $(ECHO_SERVER))
	AUTOBAHN_OUT=autobahn-async AUTOBAHN_SERVER_ARGS="--async" bash Tests/Autobahn/run.sh $(abspath $(ECHO_SERVER)) --async-face
	bash Tests/Autobahn/run-client.sh $(abspath $(AUTOBAHN_CLIENT))
	AUTOBAHN_OUT=autobahn-tls AUTOBAHN_TLS=1 bash Tests/Autobahn/run.sh $(abspath $(ECHO_SERVER))
	bash Tests/Autobahn/run-compression.sh $(abspath $(ECHO_SERVER)) $(abspath $(AUTOBAHN_CLIENT))

## A soak of echo-server with TLS, with permessage-deflate and on 2 loops under faulty clients (SOAK_SECONDS, default 600): reports/soak.json.
soak: test-deps build
	.venv/bin/python Tests/Soak/soak.py $(abspath $(ECHO_SERVER)) --seconds $${SOAK_SECONDS:-600} --json reports/soak.json

## AddressSanitizer over the whole Swift suite, with the public-API fuzzer at 3,000 sequences.
asan: deps
	FUZZ_SEQUENCES=$${FUZZ_SEQUENCES:-3000} LSAN_OPTIONS=suppressions=$(abspath Tests/lsan.supp) ASAN_OPTIONS=suppressions=$(abspath Tests/asan.supp) $(SWIFT) test --sanitize=address --scratch-path .build-asan

## The public-call safety tests in a release build, where a trap has no debug checks around it.
safety-release: deps
	$(SWIFT) test -c release -Xswiftc -enable-testing --scratch-path .build-release-tests --filter PublicAPISafetyTests

## ThreadSanitizer over the suites whose code crosses threads (the loop inbox, server groups, TLS, topics across loops, static files on the thread pool, a group in a ServiceGroup, the async face and its reconnecting client).
tsan: deps
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan --filter 'LoopInboxTests|LoopGroupTests|UVKitTests|TLSTests|TopicDeliveryTests|StaticFileTests|ServiceLifecycleTests|AsyncFaceTests'

## A bounded libFuzzer run over the frame and request-head parsers.
fuzz: deps
	bash Tests/Fuzz/run.sh $${FUZZ_SECONDS:-60}

## The load benchmarks side by side (about 14 minutes; BENCH_PEERS="NAME=PATH;..." adds other echo servers, such as µWebSockets built from its source as docs/benchmarks.md describes): docs/benchmarks.md and .png.
# 5 repeats, servers alternated; the micro table goes into the same page.
bench: bench-deps
	.venv/bin/python Benchmarks/run_bench.py

## A short version of the load benchmarks (under 3 minutes), into reports/.
bench-quick: bench-deps
	.venv/bin/python Benchmarks/run_bench.py --quick --out reports/benchmarks-quick.md

## permessage-deflate side by side (about 5 minutes): docs/benchmarks-compression.md.
bench-compression: bench-deps
	cd Benchmarks && ../.venv/bin/python run_compression_bench.py

## One loop against two, side by side (about 4 minutes): docs/benchmarks-loops.md.
bench-loops: bench-deps
	.venv/bin/python Benchmarks/run_loops_bench.py

## TLS side by side (about 8 minutes): wss:// against ws://, node ws on https, SwiftNIO with NIOSSL; docs/benchmarks-tls.md.
bench-tls: bench-deps
	.venv/bin/python Benchmarks/run_tls_bench.py

## The async face against the callback echo and Hummingbird's WebSocket echo, side by side (about 5 minutes): docs/benchmarks-async.md.
bench-async: bench-deps
	cd Benchmarks && $(SWIFT) build $(RELEASE_FLAGS) --product hummingbird-echo
	.venv/bin/python Benchmarks/run_async_bench.py

## ws-bench against µWebSockets' load_test on one server, and --threads 2 against 1 (about 5 minutes; LOAD_TEST=path/to/load_test SERVER=path/to/echo-at-every-path, both built elsewhere as docs/benchmarks.md describes): docs/benchmarks-loadgen.md.
bench-loadgen: bench-deps
	.venv/bin/python Benchmarks/run_loadgen_bench.py --load-test "$(LOAD_TEST)" --server "$(SERVER)"

## Fan-out side by side (about 5 minutes; BENCH_PUBSUB_PEERS="NAME=PATH;..." adds other pub/sub servers, as docs/benchmarks-pubsub.md describes): docs/benchmarks-pubsub.md.
bench-pubsub: bench-deps
	cd Benchmarks && $(SWIFT) build $(RELEASE_FLAGS) --product uv-pubsub
	.venv/bin/python Benchmarks/run_pubsub_bench.py

## Static files against nginx, side by side (about 2 minutes; STALL_BASELINE=path/to/old/echo-server adds the slow-reader comparison): docs/benchmarks-files.md.
bench-files: bench-deps
	.venv/bin/python Benchmarks/run_files_bench.py $(if $(STALL_BASELINE),--stall-baseline $(STALL_BASELINE))

## Micro benchmarks with allocation counts (ordo-one/benchmark).
# Their table goes into docs/benchmarks.md.
bench-micro: deps
	@mkdir -p reports
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark --format markdown --no-progress | tee ../reports/micro.md
	python3 Benchmarks/micro_table.py reports/micro.md > Benchmarks/micro-results.md
	@if [ -f docs/benchmarks-load.json ]; then $(if $(wildcard .venv/bin/python),.venv/bin/python,python3) Benchmarks/run_bench.py --render docs/benchmarks-load.json; fi

## Instructions per message on the server's read path (callgrind): the repeatable figure.
# Repeatable where wall-clock figures are not; compare before and after.
bench-instructions: deps build ws-bench
	@bash scripts/install-deps.sh bench
	python3 Benchmarks/instructions.py --json docs/benchmarks-instructions.json
	@if [ -f docs/benchmarks-load.json ]; then $(if $(wildcard .venv/bin/python),.venv/bin/python,python3) Benchmarks/run_bench.py --render docs/benchmarks-load.json; fi

## Fails when a per-message allocation count passes its threshold.
bench-check: deps
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark thresholds check

bench-deps: deps build
	@bash scripts/install-deps.sh bench
	@bash scripts/setup-python.sh bench
	$(MAKE) --no-print-directory ws-bench
	cd Benchmarks && $(SWIFT) build $(RELEASE_FLAGS) --product uv-tcp-echo
	cd Benchmarks && $(SWIFT) build $(RELEASE_FLAGS) --product nio-echo
	@mkdir -p reports

## Removes every build and report folder.
clean:
	rm -rf .build .build-asan .build-tsan .build-fuzz .build-release-tests reports
