#pragma once
// Checkpoints: everything needed to continue a training run exactly where it stopped.
//
// One file per rank (solver state differs between ranks: each owns its own subdomains'
// local memories): the parameters, the solver's state (Solver::save_state), the model's
// buffers (e.g. batch-norm running statistics), the driver's position (ResumeState), the
// history so far, and an identity: the options that define the trajectory (problem, model,
// solver options, precision, seed, ranks). A checkpoint is only loaded into a run with the
// same identity. Files are written to a temporary name and renamed: never half-written.
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "ddtrain/solver.hpp"
#include "ddtrain/summary.hpp"
#include "ddtrain/train.hpp"

namespace ddtrain {

/// Options that define a run's trajectory, by name ("problem" -> "allen_cahn", ...).
using RunIdentity = std::map<std::string, std::string>;

struct Checkpoint {
  RunIdentity identity;
  ResumeState state;                     ///< where the driver continues
  torch::Tensor parameters;              ///< the flat parameter vector x
  std::vector<IterationSummary> history; ///< rows so far (what the writer kept; may be empty)
};

/// Writes `checkpoint`, `solver`'s state and `model`'s buffers to `file` (via file + ".tmp").
/// Throws IoError if the file cannot be written.
void save_checkpoint(const std::filesystem::path& file, const Checkpoint& checkpoint,
                     const Solver& solver, torch::nn::Module& model);

/// Reads `file`; refuses (InvalidArgument naming the first differing option) a checkpoint
/// whose identity differs from `expected`; then loads the solver's state and the model's
/// buffers. Throws IoError if the file is missing, unreadable or corrupt.
Checkpoint load_checkpoint(const std::filesystem::path& file, const RunIdentity& expected,
                           Solver& solver, torch::nn::Module& model);

/// Saves `archive` to `file` via `file` + ".tmp" and a rename (never half-written); IoError.
void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::filesystem::path& file);

/// The file of `rank` in a checkpoint directory: DIR/rank-R.pt (R = rank).
std::filesystem::path checkpoint_file(const std::filesystem::path& directory, int rank);

}  // namespace ddtrain
