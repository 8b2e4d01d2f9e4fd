#pragma once
// Removing a test's scratch directory without std::filesystem::remove_all: PyTorch's own
// LibTorch builds (seen with the 2.11.0+cu130 wheel) export a std::filesystem::remove_all of
// their own from libtorch.so, the dynamic linker binds the tests' calls to it, and it crashes
// (a call through a null pointer) as soon as the directory holds a file.
#include <ftw.h>

#include <cstdio>
#include <filesystem>

namespace {

/// Removes `dir` and everything below it, ignoring errors (like remove_all with an error_code).
inline void remove_tree(const std::filesystem::path& dir) {
  nftw(dir.c_str(), [](const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); }, 16,
       FTW_DEPTH | FTW_PHYS);
}

}  // namespace
