"""The load benchmark behind `make bench` (entry point: bench/run.py).

The modules follow one row of the report from start to finish:

- `settings`: paths, fake credentials, the scenarios and the run's options;
- `processes`: child processes in their own process groups, readiness probes;
- `sampling`: CPU time and RSS of process trees, read from /proc;
- `wrk`: running wrk and parsing the one `BENCH_JSON` line its Lua prints;
- `peers`: how each peer and the upstream emulator are started and driven;
- `results`: windows and rows, what their answers mean, how windows add up;
- `measure`: one row: start, warm up, measured windows, stop;
- `goals`: the performance goals, judged on the rows;
- `machine`, `report`: the markdown report; `cli`: options and output files.
"""

from .cli import main

__all__ = ["main"]
