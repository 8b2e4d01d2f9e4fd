#pragma once
// What `ddtrain train` and `ddtrain compare` report on stdout while they run: lines for people
// (`--log-format text`) or one JSON object per line for tools (`--log-format jsonl`, where
// nothing else goes to stdout; errors stay on stderr in both).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "ddtrain/summary.hpp"

namespace ddtrain::cli {

enum class LogFormat { kText, kJsonl };

/// "text" or "jsonl"; anything else throws InvalidArgument (one line naming both).
LogFormat parse_log_format(const std::string& name);

/// One JSON object as one line on stdout, flushed (NaN and Inf as null, so every line parses).
void print_json_line(const nlohmann::ordered_json& object);

/// `fields` (e.g. a summary.json) as one "event" object, the event name and the run's label
/// (`compare`; empty: none) first.
nlohmann::ordered_json event_object(const std::string& event, const std::string& run_label,
                                    const nlohmann::json& fields = nlohmann::json::object());

struct ProgressSettings {
  bool enabled = true;              ///< false: nothing (--quiet, ranks other than 0)
  LogFormat format = LogFormat::kText;
  int64_t every = 10;               ///< --progress-every
  double time_limit_s = 0;          ///< for "s left"
  double epochs = 0;                ///< the epoch budget, for "s left" without a time limit
  std::string metric_name;
  std::string run_label;            ///< `compare`'s entry (jsonl: the "run" field)
};

/// Progress of one run. Text: one line per `every` iterations (and iteration 1) in a pipe, a
/// log file or under mpirun, an updating '\r' line on a terminal. Jsonl: one "iteration"
/// object per `every` iterations, iteration 1, and every iteration whose metric was evaluated.
class Progress {
 public:
  explicit Progress(ProgressSettings settings);
  void report(const IterationSummary& row);
  void finish();  ///< ends a terminal's updating line

 private:
  void report_text(const IterationSummary& row);
  ProgressSettings settings_;
  bool terminal_;
  double last_metric_;
};

}  // namespace ddtrain::cli
