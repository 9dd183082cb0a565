#include <iostream>

#include "cli/commands.hpp"

namespace sig::cli {

int bench_command(int, char**) {
  std::cerr << "sigstream bench: not implemented yet\n";
  return 2;
}

}  // namespace sig::cli
