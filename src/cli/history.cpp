#include <iostream>

#include "cli/commands.hpp"

namespace sig::cli {

int history_command(int, char**) {
  std::cerr << "sigstream history: not implemented yet\n";
  return 2;
}

}  // namespace sig::cli
