# Shortcuts; ./dev does the work (it sets up .venv and builds the kernels first).
#   make test         the whole test suite (lint and type checks included)
#   make demo         rate the synthetic demo society
#   make bench        the full benchmark suite: bench/results/<UTC time>/ (report.md, plots, results.json)
#   make bench-quick  the suite at tiny sizes (seconds; what CI runs through tests/test_bench.py)
#   make bench-readme a full run, then the README's performance section and docs/bench/ from it
#   make micro        pytest-benchmark micro-benchmarks, saved for --benchmark-compare (bench/test_micro.py)
# Extra arguments: make bench ARGS="--only tariffs,order --repeats 3"

ARGS ?=

.PHONY: test demo bench bench-quick bench-readme micro

test:
	./dev test $(ARGS)

demo:
	./dev demo $(ARGS)

bench:
	./dev bench $(ARGS)

bench-quick:
	./dev bench --quick $(ARGS)

bench-readme:
	./dev bench --update-readme $(ARGS)

micro:
	./dev test bench/test_micro.py --benchmark-autosave $(ARGS)
