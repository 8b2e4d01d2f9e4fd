#pragma once
// Removing a test's scratch directory without std::filesystem::remove_all: PyTorch's own
// LibTorch builds (seen with the 2.11.0+cu130 wheel) export a std::filesystem::remove_all of
// their own from libtorch.so, the dynamic linker binds the tests' calls to it, and it crashes
// (a call through a null pointer) as soon as the directory holds a file.
#include <ftw.h>

#include <cstdio>
#include <filesystem>

namespace {

/// Removes `dir` and everything below it (children first), going on past entries it cannot
/// remove; a missing `dir` is no error.
inline void remove_tree(const std::filesystem::path& dir) {
  nftw(
      dir.c_str(),
      [](const char* path, const struct stat*, int, struct FTW*) {
        std::remove(path);
        return 0;  // non-zero would stop the walk
      },
      16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace
