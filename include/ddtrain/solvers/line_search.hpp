#pragma once
/// @file
/// Line searches along a direction d from x: strong Wolfe (cubic interpolation, bracketing and
/// zoom; Nocedal & Wright Alg. 3.5/3.6) and backtracking Armijo. Non-finite trial values count
/// as "step too long" and shrink the step.
#include <torch/torch.h>

#include <string>

#include "ddtrain/objective.hpp"

namespace ddtrain {

enum class LineSearchType { kStrongWolfe, kArmijo };
LineSearchType parse_line_search(const std::string& name);  // "strong_wolfe" | "armijo"
std::string to_string(LineSearchType type);

struct LineSearchOptions {
  LineSearchType type = LineSearchType::kStrongWolfe;
  double c1 = 1e-4;                ///< sufficient-decrease constant
  double c2 = 0.9;                 ///< curvature constant (strong Wolfe)
  int max_evaluations = 25;        ///< evaluations per search
  double tolerance_change = 1e-9;  ///< stop when the bracket * max|d| is below this
  double backtrack_factor = 0.5;   ///< Armijo: step shrink factor
  /// "" if valid, else a one-line message naming the field after `path` (this struct's place in
  /// the options that hold it, e.g. "line_search.").
  std::string validate(const std::string& path = "") const;
};

struct LineSearchResult {
  double step = 0;          ///< accepted step t (0 if no decrease was found)
  double loss = 0;          ///< loss at x + t d
  torch::Tensor gradient;   ///< gradient at x + t d (defined for strong Wolfe and Armijo)
  int evaluations = 0;      ///< gradient evaluations used
  bool wolfe = false;       ///< strong Wolfe (or Armijo) conditions satisfied
  bool decreased = false;   ///< loss(x + t d) < loss(x)
};

/// Searches from `initial_step`; f0, g0 = loss and gradient at x; d a descent direction.
LineSearchResult line_search(Objective& objective, const torch::Tensor& x, double f0,
                             const torch::Tensor& g0, const torch::Tensor& d, double initial_step,
                             const LineSearchOptions& options);

}  // namespace ddtrain
