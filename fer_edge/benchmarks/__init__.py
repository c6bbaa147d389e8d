"""Benchmarks: size, speed, memory and accuracy lost per artifact and backend, as records and reports.

``run_bench`` (fer_edge.benchmarks.runner) measures; ``results`` holds the schema and merging; ``render``,
``html`` and ``plots`` turn records into tables and pages. Importing this package imports no backend.
"""
