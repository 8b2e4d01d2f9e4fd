#include "ddtrain/summary.hpp"

#include "ddtrain/enum_names.hpp"

namespace ddtrain {

namespace {
constexpr NameTable<Termination, 10> kTerminationNames{{{Termination::kRunning, "running"},
                                                        {Termination::kConverged, "converged"},
                                                        {Termination::kMaxEpochs, "max_epochs"},
                                                        {Termination::kMaxIterations, "max_iterations"},
                                                        {Termination::kTimeLimit, "time_limit"},
                                                        {Termination::kTargetReached, "target_reached"},
                                                        {Termination::kLineSearchFailure, "line_search_failure"},
                                                        {Termination::kNumericalFailure, "numerical_failure"},
                                                        {Termination::kInterrupted, "interrupted"},
                                                        {Termination::kUserRequested, "user_requested"}}};
}  // namespace

std::string to_string(Termination t) { return name_of(kTerminationNames, t); }

bool is_failure(Termination t) {
  return t == Termination::kNumericalFailure || t == Termination::kInterrupted ||
         t == Termination::kLineSearchFailure;
}

}  // namespace ddtrain
