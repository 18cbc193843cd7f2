"""Benchmarks: each module prints a table and writes JSON (and PNG plots) under bench/results/.

Run them with `mtwin bench NAME [--quick] [--out DIR]`. A module here is a benchmark when it defines
``configure(parser)`` (add its options; keep heavy imports out) and ``run(args) -> int``, plus a
one-line ``SUMMARY``.
"""
