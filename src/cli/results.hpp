#pragma once
// The results directory of a run: config.ini, history.csv, summary.json (rank 0 writes).
// Every file is written to a temporary name and renamed, so none is ever half-written.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
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
std::string history_csv_row(const IterationSummary& row);  ///< one line, '\n'-terminated

/// history.csv written while the run goes: the rows so far, then one flushed line per
/// iteration, so that a running job can be watched (tail -f, ddtrain plot). `finish` rewrites
/// the whole file atomically (a killed run may leave a partial last line, never a wrong one).
class HistoryStream {
 public:
  void open(const std::filesystem::path& path, const std::vector<IterationSummary>& rows);
  void append(const IterationSummary& row);  ///< no-op unless open
  void finish(const std::vector<IterationSummary>& rows);  ///< no-op unless open

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};
nlohmann::json summary_json(const Summary& summary);

/// Versions of ddtrain, LibTorch, MPI (and CUDA/NCCL when used) and the machine.
nlohmann::json environment_json();

}  // namespace ddtrain::cli
