#include "results.hpp"

#include <torch/torch.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "ddtrain/checkpoint.hpp"
#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/version.hpp"

namespace ddtrain::cli {

namespace fs = std::filesystem;

void write_file_atomically(const fs::path& path, const std::string& content) {
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    DDTRAIN_CHECK(out.good(), IoError, "cannot write '", temporary.string(), "'");
    out << content;
    out.flush();
    DDTRAIN_CHECK(out.good(), IoError, "error while writing '", temporary.string(), "'");
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  DDTRAIN_CHECK(!ec, IoError, "cannot rename '", temporary.string(), "' to '", path.string(),
                "': ", ec.message());
}

void write_model_atomically(const fs::path& path, torch::nn::Module& model) {
  torch::serialize::OutputArchive archive;
  model.save(archive);
  save_archive_atomically(archive, path);
}

void prepare_results_directory(const fs::path& dir, bool overwrite) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    DDTRAIN_CHECK(fs::is_directory(dir, ec), InvalidArgument, "--out '", dir.string(),
                  "' exists and is not a directory");
    DDTRAIN_CHECK(overwrite || fs::is_empty(dir, ec), InvalidArgument, "--out '", dir.string(),
                  "' already exists and is not empty (use --overwrite to replace its results)");
  }
  fs::create_directories(dir, ec);
  DDTRAIN_CHECK(!ec, IoError, "cannot create --out directory '", dir.string(), "': ", ec.message());
}

namespace {
std::string number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}
nlohmann::json json_number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}
}  // namespace

std::string history_csv_row(const IterationSummary& r) {
  std::ostringstream out;
  out << r.iteration << ',' << number(r.epoch) << ',' << number(r.wall_time_s) << ','
      << r.gradient_evaluations << ',' << r.local_gradient_evaluations << ','
      << r.loss_evaluations << ',' << number(r.loss) << ',' << number(r.metric) << ','
      << number(r.step_length) << ',' << number(r.radius) << ',' << (r.accepted ? 1 : 0) << '\n';
  return out.str();
}

std::string history_csv(const std::vector<IterationSummary>& rows) {
  std::string out =
      "iteration,epoch,wall_time_s,gradient_evaluations,local_gradient_evaluations,"
      "loss_evaluations,loss,metric,step_length,radius,accepted\n";
  for (const auto& r : rows) out += history_csv_row(r);
  return out;
}

void HistoryStream::open(const fs::path& path, const std::vector<IterationSummary>& rows) {
  path_ = path;
  write_file_atomically(path, history_csv(rows));
  out_.open(path, std::ios::binary | std::ios::app);
  DDTRAIN_CHECK(out_.good(), IoError, "cannot append to '", path.string(), "'");
}

void HistoryStream::append(const IterationSummary& row) {
  if (!out_.is_open()) return;
  out_ << history_csv_row(row);
  out_.flush();
  DDTRAIN_CHECK(out_.good(), IoError, "error while writing '", path_.string(), "'");
}

void HistoryStream::finish(const std::vector<IterationSummary>& rows) {
  if (!out_.is_open()) return;
  out_.close();
  write_file_atomically(path_, history_csv(rows));
}

nlohmann::json summary_json(const Summary& s) {
  nlohmann::json j;
  j["termination"] = to_string(s.termination);
  j["message"] = s.message;
  j["iterations"] = s.iterations;
  j["epochs"] = s.epochs;
  j["evaluations"] = s.gradient_evaluations;
  j["local_evaluations"] = s.local_gradient_evaluations;
  j["loss_evaluations"] = s.loss_evaluations;
  j["initial_loss"] = json_number(s.initial_loss);
  j["final_loss"] = json_number(s.final_loss);
  j["metric_name"] = s.metric_name;
  j["metric"] = json_number(s.metric);
  j["wall_time_s"] = s.wall_time_s;  // = train_time_s (the name of earlier versions)
  j["train_time_s"] = s.wall_time_s;  // metric evaluations and checkpoints excluded
  j["elapsed_s"] = s.elapsed_s;       // the whole run (what --time-limit bounds)
  j["time_to_target_s"] = json_number(s.time_to_target_s);
  j["epochs_to_target"] = s.epochs_to_target >= 0 ? nlohmann::json(s.epochs_to_target) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json environment_json() {
  nlohmann::json j;
  j["ddtrain"] = version();
  j["libtorch"] = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) +
                  "." + std::to_string(TORCH_VERSION_PATCH);
  j["mpi"] = mpi_library_version();
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  j["hostname"] = host;
  struct utsname system {};
  if (uname(&system) == 0)
    j["system"] = std::string(system.sysname) + " " + system.release + " " + system.machine;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      j["cpu"] = line.substr(line.find(':') + 2);
      break;
    }
  }
  j["compiler"] = __VERSION__;
  j["torch_cuda"] = torch::cuda::is_available();
  if (torch::cuda::is_available()) j["gpus"] = torch::cuda::device_count();
  j["hardware_threads"] = std::thread::hardware_concurrency();
  j["torch_threads"] = torch::get_num_threads();
  return j;
}

}  // namespace ddtrain::cli
