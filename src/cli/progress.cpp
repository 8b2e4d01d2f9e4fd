#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain::cli {

LogFormat parse_log_format(const std::string& name) {
  if (name == "text") return LogFormat::kText;
  if (name == "jsonl") return LogFormat::kJsonl;
  throw InvalidArgument("--log-format '" + name + "' (accepted: text, jsonl)");
}

void print_json_line(const nlohmann::ordered_json& object) {
  // nlohmann writes NaN and Inf as null; invalid UTF-8 (a path) is replaced, never thrown on.
  const std::string line = object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

nlohmann::ordered_json event_object(const std::string& event, const std::string& run_label,
                                    const nlohmann::json& fields) {
  nlohmann::ordered_json object;
  object["event"] = event;
  if (!run_label.empty()) object["run"] = run_label;
  for (const auto& [key, value] : fields.items()) object[key] = nlohmann::ordered_json(value);
  return object;
}

Progress::Progress(ProgressSettings settings)
    : settings_(std::move(settings)),
      // Open MPI hands its ranks a pseudo-terminal as stdout even when mpirun writes to a log
      // file: under MPI, plain lines (a '\r' line would make the log one endless line).
      terminal_(isatty(fileno(stdout)) != 0 && !launched_under_mpi()),
      last_metric_(kNaN) {
  settings_.every = std::max<int64_t>(1, settings_.every);
}

void Progress::report(const IterationSummary& row) {
  if (!settings_.enabled) return;
  const bool due = row.iteration % settings_.every == 0 || row.iteration == 1;
  if (settings_.format == LogFormat::kText) {
    if (!std::isnan(row.metric)) last_metric_ = row.metric;
    if (terminal_ || due) report_text(row);
    return;
  }
  const bool evaluated = !std::isnan(row.metric);
  if (!due && !evaluated) return;
  nlohmann::ordered_json event = event_object("iteration", settings_.run_label);
  event["iteration"] = row.iteration;
  event["epoch"] = row.epoch;
  event["wall_time_s"] = row.wall_time_s;
  if (!std::isnan(row.elapsed_s)) event["elapsed_s"] = row.elapsed_s;
  event["loss"] = row.loss;
  if (evaluated) {
    event["metric_name"] = settings_.metric_name;
    event["metric"] = row.metric;
  }
  event["evaluations"] = row.gradient_evaluations;
  event["local_evaluations"] = row.local_gradient_evaluations;
  event["loss_evaluations"] = row.loss_evaluations;
  print_json_line(event);
}

namespace {
std::string short_number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4g", v);
  return buffer;
}
}  // namespace

void Progress::report_text(const IterationSummary& row) {
  std::ostringstream line;
  line << "iter " << row.iteration << "  epoch " << short_number(row.epoch) << "  loss " << short_number(row.loss);
  if (!std::isnan(last_metric_)) line << "  " << settings_.metric_name << " " << short_number(last_metric_);
  line << "  " << short_number(row.wall_time_s) << " s";
  if (settings_.time_limit_s > 0 && !std::isnan(row.elapsed_s)) {
    line << " (" << short_number(std::max(0.0, settings_.time_limit_s - row.elapsed_s)) << " s left)";
  } else if (row.epoch > 0) {
    line << " (~" << short_number(row.wall_time_s * (settings_.epochs / row.epoch - 1)) << " s left)";
  }
  if (terminal_) {
    std::printf("\r%-100s", line.str().c_str());
  } else {
    std::printf("%s\n", line.str().c_str());
  }
  std::fflush(stdout);
}

void Progress::finish() {
  if (settings_.enabled && settings_.format == LogFormat::kText && terminal_) std::printf("\n");
}

}  // namespace ddtrain::cli
