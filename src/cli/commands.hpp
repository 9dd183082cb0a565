#pragma once
// The subcommands of the one executable. Each takes the arguments after its
// own name and returns the process exit code.
namespace sig::cli {

int serve_command(int argc, char** argv);
int history_command(int argc, char** argv);
int state_command(int argc, char** argv);
int rooms_command(int argc, char** argv);
int cluster_command(int argc, char** argv);
// `sigstream token`: mints a join token (development and tests).
int token_command(int argc, char** argv);

}  // namespace sig::cli
