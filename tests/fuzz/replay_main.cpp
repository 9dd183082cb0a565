// Runs a fuzz target's LLVMFuzzerTestOneInput on files, without libFuzzer:
// the gcc build (no clang, no fuzzing) replays the seed corpus and every
// crash ever found, so that a fixed crash stays fixed.
//
//   fuzz_replay_<target> PATH...   PATH: a file, or a directory whose files
//                                  (not recursive, hidden ones skipped) are run
// A broken invariant aborts (FUZZ_CHECK), which fails the ctest test.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

namespace {

bool read_file(fs::path const& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path path = argv[i];
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> found;
      for (auto const& entry : fs::directory_iterator(path)) {
        if (!entry.is_regular_file()) continue;
        if (entry.path().filename().string().starts_with(".")) continue;  // .gitkeep
        found.push_back(entry.path());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(path, ec)) {
      files.push_back(path);
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", path.c_str());
      return 2;
    }
  }
  std::string bytes;
  for (auto const& file : files) {
    if (!read_file(file, bytes)) {
      std::fprintf(stderr, "cannot read %s\n", file.c_str());
      return 2;
    }
    // Printed first, so that an abort names its input.
    std::fprintf(stderr, "replay %s (%zu bytes)\n", file.c_str(), bytes.size());
    // A copy of exactly `size` bytes on the heap, as libFuzzer passes it, so
    // that a sanitizer build sees any read past the end.
    std::vector<uint8_t> input(bytes.begin(), bytes.end());
    static const uint8_t empty = 0;
    LLVMFuzzerTestOneInput(input.empty() ? &empty : input.data(), input.size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
