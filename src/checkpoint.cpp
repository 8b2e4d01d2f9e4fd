#include "ddtrain/checkpoint.hpp"

#include <set>
#include <sstream>
#include <system_error>

#include "ddtrain/error.hpp"

namespace ddtrain {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kFormatVersion = 1;
constexpr int64_t kHistoryColumns = 11;

torch::Tensor encode_text(const std::string& text) {
  torch::Tensor bytes = torch::empty({static_cast<int64_t>(text.size())}, torch::kUInt8);
  std::copy(text.begin(), text.end(), bytes.data_ptr<uint8_t>());
  return bytes;
}

std::string decode_text(const torch::Tensor& bytes) {
  const torch::Tensor b = bytes.contiguous().to(torch::kUInt8);
  const auto* data = b.data_ptr<uint8_t>();
  return std::string(data, data + b.numel());
}

std::string encode_identity(const RunIdentity& identity) {
  std::ostringstream out;
  for (const auto& [key, value] : identity) out << key << '=' << value << '\n';
  return out.str();
}

RunIdentity decode_identity(const std::string& text) {
  RunIdentity identity;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) identity[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return identity;
}

/// "" if equal, else the first option that differs, both values named.
std::string identity_difference(const RunIdentity& saved, const RunIdentity& expected) {
  auto value = [](const RunIdentity& id, const std::string& key) {
    auto it = id.find(key);
    return it == id.end() ? std::string("(not set)") : "'" + it->second + "'";
  };
  // Options first, then what follows from them (a different --width also changes "parameters").
  const std::set<std::string> derived = {"ranks", "parameters"};
  for (bool derived_pass : {false, true}) {
    for (const auto* id : {&saved, &expected}) {
      for (const auto& [key, unused] : *id) {
        (void)unused;
        if (derived.count(key) != static_cast<size_t>(derived_pass)) continue;
        if (value(saved, key) != value(expected, key))
          return key + " is " + value(saved, key) + " in the checkpoint but " + value(expected, key) +
                 " in this run";
      }
    }
  }
  return "";
}

torch::Tensor encode_history(const std::vector<IterationSummary>& rows) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(rows.size()), kHistoryColumns}, torch::kFloat64);
  auto a = t.accessor<double, 2>();
  for (size_t i = 0; i < rows.size(); ++i) {
    const IterationSummary& r = rows[i];
    const double values[kHistoryColumns] = {
        static_cast<double>(r.iteration), r.epoch, r.wall_time_s,
        static_cast<double>(r.gradient_evaluations), static_cast<double>(r.local_gradient_evaluations),
        static_cast<double>(r.loss_evaluations), r.loss, r.metric, r.step_length, r.radius,
        r.accepted ? 1.0 : 0.0};
    for (int64_t j = 0; j < kHistoryColumns; ++j) a[static_cast<int64_t>(i)][j] = values[j];
  }
  return t;
}

std::vector<IterationSummary> decode_history(const torch::Tensor& t) {
  DDTRAIN_CHECK(t.dim() == 2 && t.size(1) == kHistoryColumns, IoError, "bad history table");
  const torch::Tensor h = t.to(torch::kFloat64).contiguous();
  auto a = h.accessor<double, 2>();
  std::vector<IterationSummary> rows(static_cast<size_t>(h.size(0)));
  for (int64_t i = 0; i < h.size(0); ++i) {
    IterationSummary& r = rows[static_cast<size_t>(i)];
    r.iteration = static_cast<int64_t>(a[i][0]);
    r.epoch = a[i][1];
    r.wall_time_s = a[i][2];
    r.gradient_evaluations = static_cast<int64_t>(a[i][3]);
    r.local_gradient_evaluations = static_cast<int64_t>(a[i][4]);
    r.loss_evaluations = static_cast<int64_t>(a[i][5]);
    r.loss = a[i][6];
    r.metric = a[i][7];
    r.step_length = a[i][8];
    r.radius = a[i][9];
    r.accepted = a[i][10] != 0;
  }
  return rows;
}

torch::Tensor encode_state(const ResumeState& s) {
  return torch::tensor({static_cast<double>(s.epoch), static_cast<double>(s.batch),
                        static_cast<double>(s.iteration), s.wall_time_s,
                        static_cast<double>(s.counters.gradient), static_cast<double>(s.counters.loss_only),
                        static_cast<double>(s.local_gradient_evaluations), s.initial_loss, s.final_loss},
                       torch::kFloat64);
}

ResumeState decode_state(const torch::Tensor& t) {
  DDTRAIN_CHECK(t.numel() == 9, IoError, "bad driver state");
  const torch::Tensor v = t.to(torch::kFloat64).contiguous();
  const double* d = v.data_ptr<double>();
  ResumeState s;
  s.epoch = static_cast<int64_t>(d[0]);
  s.batch = static_cast<int64_t>(d[1]);
  s.iteration = static_cast<int64_t>(d[2]);
  s.wall_time_s = d[3];
  s.counters.gradient = static_cast<int64_t>(d[4]);
  s.counters.loss_only = static_cast<int64_t>(d[5]);
  s.local_gradient_evaluations = static_cast<int64_t>(d[6]);
  s.initial_loss = d[7];
  s.final_loss = d[8];
  return s;
}

}  // namespace

fs::path checkpoint_file(const fs::path& directory, int rank) {
  return directory / ("rank-" + std::to_string(rank) + ".pt");
}

void save_checkpoint(const fs::path& file, const Checkpoint& checkpoint, const Solver& solver,
                     torch::nn::Module& model) {
  DDTRAIN_CHECK(checkpoint.parameters.defined(), InvalidArgument, "save_checkpoint: no parameters");
  torch::serialize::OutputArchive archive;
  archive.write("format", torch::tensor({kFormatVersion}, torch::kInt64));
  archive.write("identity", encode_text(encode_identity(checkpoint.identity)));
  archive.write("state", encode_state(checkpoint.state));
  archive.write("parameters", checkpoint.parameters.detach().to(torch::kCPU));
  archive.write("history", encode_history(checkpoint.history));
  torch::serialize::OutputArchive solver_archive;
  solver.save_state(solver_archive);
  archive.write("solver", solver_archive);
  torch::serialize::OutputArchive buffers;
  for (const auto& item : model.named_buffers()) buffers.write(item.key(), item.value().to(torch::kCPU));
  archive.write("buffers", buffers);

  save_archive_atomically(archive, file);
}

void save_archive_atomically(torch::serialize::OutputArchive& archive, const fs::path& file) {
  const fs::path temporary = file.string() + ".tmp";
  try {
    archive.save_to(temporary.string());
  } catch (const c10::Error& e) {
    throw IoError("cannot write '" + temporary.string() + "': " + e.what_without_backtrace());
  }
  std::error_code ec;
  fs::rename(temporary, file, ec);
  DDTRAIN_CHECK(!ec, IoError, "cannot rename '", temporary.string(), "' to '", file.string(), "': ",
                ec.message());
}

Checkpoint load_checkpoint(const fs::path& file, const RunIdentity& expected, Solver& solver,
                           torch::nn::Module& model) {
  std::error_code ec;
  DDTRAIN_CHECK(fs::is_regular_file(file, ec), IoError, "checkpoint '", file.string(),
                "' does not exist");
  Checkpoint checkpoint;
  torch::serialize::InputArchive archive;
  torch::serialize::InputArchive solver_archive;
  try {
    archive.load_from(file.string());
    torch::Tensor format, identity, state, history;
    archive.read("format", format);
    DDTRAIN_CHECK(format.numel() == 1 && format.item<int64_t>() == kFormatVersion, IoError,
                  "checkpoint '", file.string(), "' has an unknown format version");
    archive.read("identity", identity);
    checkpoint.identity = decode_identity(decode_text(identity));
    const std::string difference = identity_difference(checkpoint.identity, expected);
    DDTRAIN_CHECK(difference.empty(), InvalidArgument, "checkpoint '", file.string(),
                  "' belongs to another configuration: ", difference);
    archive.read("state", state);
    checkpoint.state = decode_state(state);
    archive.read("parameters", checkpoint.parameters);
    archive.read("history", history);
    checkpoint.history = decode_history(history);
    archive.read("solver", solver_archive);
  } catch (const c10::Error& e) {
    throw IoError("checkpoint '" + file.string() + "' is unreadable or corrupt: " +
                  e.what_without_backtrace());
  }
  try {
    solver.load_state(solver_archive);
    torch::serialize::InputArchive buffers;
    archive.read("buffers", buffers);
    torch::NoGradGuard no_grad;
    for (auto& item : model.named_buffers()) {
      torch::Tensor saved;
      DDTRAIN_CHECK(buffers.try_read(item.key(), saved), IoError, "checkpoint '", file.string(),
                    "' lacks the model buffer '", item.key(), "'");
      DDTRAIN_CHECK(saved.sizes() == item.value().sizes(), IoError, "checkpoint '", file.string(),
                    "': model buffer '", item.key(), "' has another shape");
      item.value().copy_(saved);
    }
  } catch (const c10::Error& e) {
    throw IoError("checkpoint '" + file.string() + "' has an unreadable solver state: " +
                  e.what_without_backtrace());
  }
  return checkpoint;
}

}  // namespace ddtrain
