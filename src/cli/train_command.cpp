// `ddtrain train`: parse options (command line + INI config), set up communicator, layout,
// problem, solver and partition, train with progress output, write the results directory.
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "ddtrain/checkpoint.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/train.hpp"
#include "ddtrain/version.hpp"
#include "progress.hpp"
#include "registry.hpp"
#include "results.hpp"
#include "train_setup.hpp"

namespace ddtrain::cli {

namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_signal = 0;
void on_signal(int signal) { g_signal = signal; }

/// Ensemble mode: one row per member (its options, seed, termination, final loss and metric),
/// gathered with one allreduce.
nlohmann::json gather_ensemble(Communicator& world, const TrainSetup& setup, const Summary& summary) {
  constexpr int kValues = 5;
  const int p = world.size();
  torch::Tensor values = torch::zeros({kValues * p}, torch::kFloat64);
  const int at = kValues * world.rank();
  values[at] = summary.final_loss;
  values[at + 1] = summary.metric;
  values[at + 2] = static_cast<double>(static_cast<int>(summary.termination));
  values[at + 3] = static_cast<double>(summary.iterations);
  values[at + 4] = summary.wall_time_s;
  world.allreduce_sum(values);
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json members = nlohmann::json::array();
  for (int r = 0; r < p; ++r) {
    const int i = kValues * r;
    members.push_back({{"member", r},
                       {"rank", r},
                       {"directory", "members/" + std::to_string(r)},
                       {"seed", member_seed(setup.train.seed, r)},
                       {"options", member_parameters(setup, r)},
                       {"termination", to_string(static_cast<Termination>(static_cast<int>(values[i + 2].item<double>())))},
                       {"iterations", static_cast<int64_t>(values[i + 3].item<double>())},
                       {"final_loss", number(values[i].item<double>())},
                       {"metric_name", summary.metric_name},
                       {"metric", number(values[i + 1].item<double>())},
                       {"train_time_s", values[i + 4].item<double>()}});
  }
  return members;
}

/// One line per ensemble member: its options, termination, final loss and metric.
void print_members(const nlohmann::json& members) {
  for (const auto& m : members) {
    std::string options;
    for (const auto& [name, value] : m["options"].items())
      options += " " + name + "=" + format_value(value.get<double>());
    const auto value_of = [](const nlohmann::json& v) { return v.is_null() ? NAN : v.get<double>(); };
    std::printf("  member %d (seed %llu%s): %s, final loss %.6g, %s %.6g\n", m["member"].get<int>(),
                static_cast<unsigned long long>(m["seed"].get<uint64_t>()), options.c_str(),
                m["termination"].get<std::string>().c_str(), value_of(m["final_loss"]),
                m["metric_name"].get<std::string>().c_str(), value_of(m["metric"]));
  }
}

/// The identity a checkpoint file was saved with (empty if it cannot be read: load_checkpoint
/// then says why).
RunIdentity saved_identity(const fs::path& file) {
  RunIdentity identity;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string());
    torch::Tensor bytes;
    archive.read("identity", bytes);
    bytes = bytes.contiguous().to(torch::kUInt8);
    const auto* data = bytes.data_ptr<uint8_t>();
    std::istringstream in(std::string(data, data + bytes.numel()));
    for (std::string line; std::getline(in, line);) {
      const size_t eq = line.find('=');
      if (eq != std::string::npos) identity[line.substr(0, eq)] = line.substr(eq + 1);
    }
  } catch (const c10::Error&) {
    identity.clear();
  }
  return identity;
}

/// Loads this rank's checkpoint of the run in `dir` into the run (parameters, solver state,
/// model buffers) and the history so far; checks that all ranks stand at the same iteration.
ResumeState resume_from_checkpoint(const fs::path& dir, const RunIdentity& identity, Run& run,
                                   std::vector<IterationSummary>& history) {
  const fs::path file = checkpoint_file(dir / "checkpoint", run.world->rank());
  std::error_code ec;
  DDTRAIN_CHECK(fs::is_regular_file(file, ec), IoError, "--resume '", dir.string(), "': no checkpoint '",
                file.string(), "' (a run writes one when it ends, is interrupted, or every --checkpoint-every epochs)");
  // A checkpoint written before config.ini recorded the defaults of the problem and solver
  // (or one resumed with such an old config.ini): an option at its default and one left out
  // are the same run.
  const RunIdentity expected = identity_like_saved(identity, saved_identity(file), run);
  Checkpoint checkpoint = load_checkpoint(file, expected, *run.solver, run.problem->model());
  FlatParameters& parameters = run.problem->parameters();
  DDTRAIN_CHECK(checkpoint.parameters.numel() == parameters.size(), IoError, "checkpoint '",
                file.string(), "' holds ", checkpoint.parameters.numel(), " parameters, the model has ",
                parameters.size());
  {
    torch::NoGradGuard no_grad;
    parameters.values().copy_(checkpoint.parameters.reshape({-1}));
  }
  // The files are written rank by rank: a job killed in between leaves them inconsistent.
  torch::Tensor first = torch::tensor({static_cast<double>(checkpoint.state.iteration)}, torch::kFloat64);
  run.world->broadcast(first, 0);
  const bool mine_differs = first.item<double>() != static_cast<double>(checkpoint.state.iteration);
  const double differing = run.world->allreduce_sum(mine_differs ? 1.0 : 0.0);
  DDTRAIN_CHECK(differing == 0, IoError, "--resume '", dir.string(),
                "': the ranks' checkpoint files are from different iterations (the job was killed "
                "while writing them); no consistent checkpoint to resume from");
  history = std::move(checkpoint.history);
  return checkpoint.state;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

/// `recorded` (a config.ini) with each budget (--epochs, --max-iterations, --time-limit) set to
/// the larger of its recorded value and the one in `resumed`; a smaller budget given to
/// --resume ends this part early but does not rewrite what the run was configured for.
std::string config_with_raised_budgets(const std::string& recorded, const std::string& resumed) {
  auto values = [](const std::string& ini) {
    std::map<std::string, std::string> out;
    std::istringstream in(ini);
    for (std::string line; std::getline(in, line);) {
      const size_t eq = line.find(" = ");
      if (eq != std::string::npos && line[0] != '#') out[line.substr(0, eq)] = line.substr(eq + 3);
    }
    return out;
  };
  const auto old_values = values(recorded), new_values = values(resumed);
  std::string out;
  std::istringstream in(recorded);
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find(" = ");
    const std::string key = eq == std::string::npos ? "" : line.substr(0, eq);
    if (key == "epochs" || key == "max-iterations" || key == "time-limit") {
      auto it = new_values.find(key);
      if (it != new_values.end()) {
        const double before = std::stod(old_values.at(key)), now = std::stod(it->second);
        // 0 = no budget (max-iterations, time-limit): larger than any.
        const bool unbounded_now = now == 0 && key != "epochs", unbounded_before = before == 0 && key != "epochs";
        if (!unbounded_before && (unbounded_now || now > before)) line = key + " = " + it->second;
      }
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

int run_train(const std::vector<std::string>& args) {
  int status = kExitOk;
  train_once(args, status, true);
  return status;
}

nlohmann::json train_once(const std::vector<std::string>& args, int& status, bool print_summary,
                          const std::string& run_label) {
  status = kExitOk;
  TrainSetup setup = parse_train_setup(args);
  if (setup.help_requested) return nlohmann::json();
  Run run = build_run(setup);
  // Rank 0 writes the run's directory (config.ini, summary.json). Every ensemble member writes
  // its history, model and summary to members/RANK; otherwise rank 0 writes them to the top.
  const bool writer = run.world->rank() == 0;
  const bool member_writer = writer || setup.ensemble;
  const fs::path member_out = setup.out.empty() || !setup.ensemble
                                  ? setup.out
                                  : setup.out / "members" / std::to_string(run.world->rank());
  const RunIdentity identity = run_identity(setup, run);
  std::vector<IterationSummary> history;
  ResumeState resume;
  if (!setup.resume.empty()) resume = resume_from_checkpoint(setup.resume, identity, run, history);
  std::error_code same_error;
  const bool continue_in_place =
      !setup.resume.empty() && fs::equivalent(setup.resume, setup.out, same_error);
  if (writer && !setup.out.empty()) {
    if (!continue_in_place) prepare_results_directory(setup.out, setup.overwrite);
    // Resumed in place: the recorded config stays, unless this part raises a budget.
    const std::string config = continue_in_place
                                   ? config_with_raised_budgets(slurp(setup.out / "config.ini"), config_ini(setup, run))
                                   : config_ini(setup, run);
    write_file_atomically(setup.out / "config.ini", config);
  }
  const bool jsonl = setup.log_format == LogFormat::kJsonl;
  if (writer && !setup.resume.empty() && !setup.quiet) {
    if (jsonl) {
      print_json_line(event_object("resumed", run_label, {{"iteration", resume.iteration}, {"epoch", resume.epoch},
                                                           {"from", setup.resume.string()}}));
    } else {
      std::printf("resumed from iteration %lld (epoch %lld) of '%s'\n", static_cast<long long>(resume.iteration),
                  static_cast<long long>(resume.epoch), setup.resume.string().c_str());
    }
  }
  if (!setup.out.empty()) {
    run.world->barrier();  // the directory exists before any rank writes its checkpoint
    std::error_code ec;
    fs::create_directories(setup.out / "checkpoint", ec);
    DDTRAIN_CHECK(!ec, IoError, "cannot create '", (setup.out / "checkpoint").string(), "': ", ec.message());
    fs::create_directories(member_out, ec);
    DDTRAIN_CHECK(!ec, IoError, "cannot create '", member_out.string(), "': ", ec.message());
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  HistoryStream history_file;
  if (member_writer && !setup.out.empty()) history_file.open(member_out / "history.csv", history);
  ProgressSettings progress_settings;
  progress_settings.enabled = writer && !setup.quiet;
  progress_settings.format = setup.log_format;
  progress_settings.every = setup.progress_every;
  progress_settings.time_limit_s = run.train.time_limit_s;
  progress_settings.epochs = static_cast<double>(run.train.epochs);
  progress_settings.metric_name = run.problem->evaluate().name;
  progress_settings.run_label = run_label;
  Progress progress(progress_settings);
  Callbacks callbacks;
  callbacks.on_iteration = [&](const IterationSummary& row) {
    history.push_back(row);
    history_file.append(row);
    progress.report(row);
    return true;
  };
  callbacks.interrupted = [] { return g_signal != 0; };  // train() makes the ranks agree
  if (!setup.out.empty()) {
    callbacks.on_checkpoint = [&](const ResumeState& state, const torch::Tensor& x) {
      Checkpoint checkpoint{identity, state, x, member_writer ? history : std::vector<IterationSummary>{}};
      save_checkpoint(checkpoint_file(setup.out / "checkpoint", run.world->rank()), checkpoint,
                      *run.solver, run.problem->model());
    };
  }

  if (writer && setup.verbose && jsonl) {
    print_json_line(event_object("setup", run_label, {{"ddtrain", version()}, {"problem", setup.problem},
                                                      {"solver", setup.solver}, {"ranks", run.world->size()},
                                                      {"groups", run.layout.groups},
                                                      {"data_parallel", run.layout.data->size()},
                                                      {"describe", run.describe}}));
  } else if (writer && setup.verbose) {
    std::printf("ddtrain %s: problem %s, solver %s, %d rank(s) (%d group(s) x %d data-parallel), %s\n",
                version(), setup.problem.c_str(), setup.solver.c_str(), run.world->size(),
                run.layout.groups, run.layout.data->size(), run.describe.c_str());
  }
  Summary summary;
  try {
    summary = train(*run.problem, *run.solver, run.train, run.layout, callbacks,
                    run.partition ? &*run.partition : nullptr, resume);
  } catch (const std::exception& e) {
    progress.finish();
    if (member_writer && !setup.out.empty()) {
      history_file.finish(history);
      Summary failed;
      failed.termination = Termination::kNumericalFailure;
      failed.message = e.what();
      failed.iterations = static_cast<int64_t>(history.size());
      write_file_atomically(member_out / "summary.json",
                            run_summary_json(setup, run, failed).dump(2) + "\n");
    }
    throw;  // main ends the job (an ensemble member's error ends every member, as a rank's does)
  }
  progress.finish();
  nlohmann::json result = run_summary_json(setup, run, summary);
  if (member_writer && !setup.out.empty()) {
    history_file.finish(history);
    // The final parameters (after a numerical failure: the last finite ones).
    write_model_atomically(member_out / "model.pt", run.problem->model());
    run.problem->write_outputs(member_out.string());
    // Last: a summary.json means the directory is complete (`ddtrain plot --watch` stops).
    if (setup.ensemble) write_file_atomically(member_out / "summary.json", result.dump(2) + "\n");
  }
  if (setup.ensemble) {
    // The run's summary: member 0's fields (as one run's) and one row per member.
    for (const char* key : {"member", "member_seed", "member_options"}) result.erase(key);
    result["members"] = gather_ensemble(*run.world, setup, summary);
  }
  if (writer) {
    if (!setup.out.empty()) write_file_atomically(setup.out / "summary.json", result.dump(2) + "\n");
    if (!setup.quiet && jsonl) {
      print_json_line(event_object("summary", run_label, result));
    } else if (!setup.quiet && print_summary) {
      std::printf("%s: %s after %lld iterations, %.3f s (%.3f s in all); final loss %.6g, %s %.6g%s\n",
                  setup.solver.c_str(), summary.message.c_str(),
                  static_cast<long long>(summary.iterations), summary.wall_time_s, summary.elapsed_s,
                  summary.final_loss, summary.metric_name.c_str(), summary.metric,
                  setup.out.empty() ? "" : ("; results in " + setup.out.string()).c_str());
      if (setup.ensemble) print_members(result["members"]);
    }
  }
  // A failed run says why on stderr, also with --quiet (which silences progress, not errors).
  if (member_writer && !summary.succeeded()) {
    std::fflush(stdout);
    const std::string member = setup.ensemble ? "member " + std::to_string(run.member) + ": " : "";
    std::fprintf(stderr, "ddtrain: error: %s%s: training failed (%s): %s after %lld iterations%s\n",
                 member.c_str(), setup.solver.c_str(), to_string(summary.termination).c_str(),
                 summary.message.c_str(), static_cast<long long>(summary.iterations),
                 member_out.empty() ? "" : ("; results in " + member_out.string()).c_str());
  }
  status = summary.succeeded() ? kExitOk : kExitTrainingFailed;
  return result;
}

}  // namespace ddtrain::cli
