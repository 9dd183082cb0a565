#pragma once
// The commands of sigstream-bench. Each takes the arguments after its own
// name and returns the process exit code.
namespace sig::bench {

// `sigstream-bench`: drives a running cluster (memory, join, signal and
// isolation phases) and reports what it does.
int cluster_bench_command(int argc, char** argv);
// `sigstream-bench history`: how `sigstream history` reads a large stream.
int history_bench_command(int argc, char** argv);
// `sigstream-bench join`: first-join latency on a fresh instance against a room's history length.
int join_bench_command(int argc, char** argv);
// `sigstream-bench floor`: what this machine charges a process per message it is woken for.
int floor_bench_command(int argc, char** argv);

}  // namespace sig::bench
