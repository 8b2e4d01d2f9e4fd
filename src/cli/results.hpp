#pragma once
// The results directory of a run: config.ini, history.csv, summary.json (rank 0 writes).
// Every file is written to a temporary name and renamed, so none is ever half-written.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "ddtrain/summary.hpp"

namespace ddtrain::cli {

void write_file_atomically(const std::filesystem::path& path, const std::string& content);

/// The module's parameters and buffers (torch::save format; load with torch::load(module, path)).
void write_model_atomically(const std::filesystem::path& path, torch::nn::Module& model);

/// Refuses an existing non-empty directory unless `overwrite`; creates it otherwise.
void prepare_results_directory(const std::filesystem::path& dir, bool overwrite);

std::string history_csv(const std::vector<IterationSummary>& rows);
nlohmann::json summary_json(const Summary& summary);

/// Versions of ddtrain, LibTorch, MPI (and CUDA/NCCL when used) and the machine.
nlohmann::json environment_json();

}  // namespace ddtrain::cli
