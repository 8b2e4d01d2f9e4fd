#include "ddtrain/summary.hpp"

namespace ddtrain {

std::string to_string(Termination t) {
  switch (t) {
    case Termination::kRunning: return "running";
    case Termination::kConverged: return "converged";
    case Termination::kMaxEpochs: return "max_epochs";
    case Termination::kMaxIterations: return "max_iterations";
    case Termination::kTimeLimit: return "time_limit";
    case Termination::kTargetReached: return "target_reached";
    case Termination::kLineSearchFailure: return "line_search_failure";
    case Termination::kNumericalFailure: return "numerical_failure";
    case Termination::kInterrupted: return "interrupted";
    case Termination::kUserRequested: return "user_requested";
  }
  return "unknown";
}

bool is_failure(Termination t) {
  return t == Termination::kNumericalFailure || t == Termination::kInterrupted ||
         t == Termination::kLineSearchFailure;
}

}  // namespace ddtrain
