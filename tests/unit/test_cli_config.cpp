// config.ini records every resolved option of the chosen problem and solver (their defaults
// included, read through the CLI's one option layer), replays the run bit for bit, and a run
// checkpointed before config.ini recorded those defaults still resumes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <set>

#include "cli_helpers.hpp"
#include "ddtrain/checkpoint.hpp"
#include "ddtrain/solvers/data_parallel.hpp"

using namespace ddtrain::test;

namespace {

const std::string kTiny = " --precision float64 --nf 32 --depth 2 --width 6 --quiet ";

std::map<std::string, std::string> ini_values(const fs::path& file) {
  std::map<std::string, std::string> values;
  std::istringstream in(slurp(file));
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find(" = ");
    if (!line.empty() && line[0] != '#' && eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return values;
}

/// The options of the solver and problem blocks of `train --problem P --solver S --help`, each
/// with its Boost default ("" if none).
std::map<std::string, std::string> registrant_options(const std::string& problem, const std::string& solver) {
  const Outcome o = run_cli("train --problem " + problem + " --solver " + solver + " --help");
  EXPECT_EQ(o.status, 0);
  std::map<std::string, std::string> options;
  bool in_block = false;
  std::istringstream in(o.out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Solver ", 0) == 0 || line.rfind("Problem ", 0) == 0) in_block = true;
    if (!in_block || line.rfind("  --", 0) != 0) continue;
    const size_t end = line.find(' ', 4);
    const std::string name = line.substr(4, end - 4);
    std::string fallback;
    const size_t open = line.find("(=");
    if (open != std::string::npos && open < line.find("  ", 4)) fallback = line.substr(open + 2, line.find(')', open) - open - 2);
    options[name] = fallback;
  }
  return options;
}

bool same_number_or_text(const std::string& a, const std::string& b) {
  char *end_a = nullptr, *end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  if (!a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0') return x == y;
  return a == b;
}

ddtrain::RunIdentity identity_of(const fs::path& checkpoint) {
  torch::serialize::InputArchive archive;
  archive.load_from(checkpoint.string());
  torch::Tensor bytes;
  archive.read("identity", bytes);
  bytes = bytes.contiguous().to(torch::kUInt8);
  std::istringstream in(std::string(bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel()));
  ddtrain::RunIdentity identity;
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) identity[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return identity;
}

/// Rewrites an L-BFGS run's checkpoint with `identity` (what an older ddtrain wrote).
void rewrite_identity(const fs::path& file, const ddtrain::RunIdentity& identity) {
  ddtrain::Lbfgs solver(ddtrain::LbfgsOptions{});
  torch::nn::Module no_buffers;
  ddtrain::Checkpoint checkpoint = ddtrain::load_checkpoint(file, identity_of(file), solver, no_buffers);
  checkpoint.identity = identity;
  ddtrain::save_checkpoint(file, checkpoint, solver, no_buffers);
}

/// config.ini without the lines of `keys` (what an older ddtrain wrote).
void drop_lines(const fs::path& file, const std::set<std::string>& keys) {
  std::istringstream in(slurp(file));
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find(" = ");
    if (eq != std::string::npos && keys.count(line.substr(0, eq))) continue;
    kept += line + "\n";
  }
  std::ofstream(file) << kept;
}

}  // namespace

TEST(CliConfig, HoldsEveryOptionOfTheProblemAndSolverAtItsResolvedValue) {
  const fs::path dir = scratch("config_complete");
  ASSERT_EQ(run_cli("reference allen_cahn --nx 32 --nt 5 --out " + (dir / "ref.mat").string()).status, 0);
  struct Case {
    std::string problem, solver, args;
  };
  std::vector<Case> cases = {
      {"allen_cahn", "lbfgs", "--reference " + (dir / "ref.mat").string() + " --nf 64 --depth 2 --width 6 --quiet"},
      {"poisson1d", "sgd", kTiny},   {"poisson1d", "adam", kTiny},   {"function_fit", "bfgs", kTiny},
      {"poisson1d", "plbfgs", kTiny}, {"poisson1d", "tr", kTiny},     {"poisson1d", "apts", kTiny}};
  if (fs::exists("/usr/share/datasets/fashion-mnist"))
    cases.push_back({"fashion_mnist", "sapts", "--train-subset 200 --test-subset 100 --quiet"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.problem + " / " + c.solver);
    const fs::path out = dir / (c.problem + "-" + c.solver);
    const Outcome o = run_cli("train --problem " + c.problem + " --solver " + c.solver + " --epochs 1 " + c.args +
                              " --out " + out.string());
    ASSERT_EQ(o.status, 0) << o.err;
    const auto config = ini_values(out / "config.ini");
    for (const auto& [name, fallback] : registrant_options(c.problem, c.solver)) {
      // Not recorded: a path that is not set, the factorization's parameters without
      // --weight-factorization, SAPTS's --max-radius (global default 0.3, local 2: no one
      // value stands for both), and plbfgs's dense update rules and memory limit without
      // --local-solver / --global-solver bfgs (they do not apply then, and are refused when
      // given).
      if (name == "data" || (name == "reference" && c.problem != "allen_cahn") ||
          name.rfind("factorization-", 0) == 0 || (name == "max-radius" && c.solver == "sapts") ||
          name == "local-update" || name == "global-update" ||
          (name == "dense-memory-limit" && c.solver == "plbfgs"))
        continue;
      auto it = config.find(name);
      ASSERT_NE(it, config.end()) << "config.ini lacks " << name << "\n" << slurp(out / "config.ini");
      // Where --help shows a Boost default, the registrant resolved the same value.
      if (!fallback.empty() && c.args.find("--" + name + " ") == std::string::npos) {
        EXPECT_TRUE(same_number_or_text(it->second, fallback)) << name << ": " << it->second << " vs " << fallback;
      }
    }
    if (c.problem == "fashion_mnist") {
      EXPECT_EQ(config.at("batch-size"), "100");
    } else {
      EXPECT_EQ(config.count("batch-size"), 0u);  // full batch: --batch-size would be refused
    }
  }
}

TEST(CliConfig, ADefaultsRunReplaysBitForBitFromItsConfigIni) {
  const fs::path dir = scratch("config_replay");
  ASSERT_EQ(run_cli("reference allen_cahn --nx 32 --nt 5 --out " + (dir / "ref.mat").string()).status, 0);
  // Allen-Cahn with the problem's and solver's defaults (only a small reference given).
  Outcome o = run_cli("train --problem allen_cahn --solver lbfgs --epochs 2 --quiet --reference " +
                      (dir / "ref.mat").string() + " --out " + (dir / "a").string());
  ASSERT_EQ(o.status, 0) << o.err;
  const std::string config = slurp(dir / "a" / "config.ini");
  for (const char* line : {"\nnf = 10000\n", "\ndepth = 6\n", "\nwidth = 40\n", "\nmodel = resnet\n", "\nlr = 1\n",
                           "\nhistory = 10\n", "\ncausal-epsilon = 0\n", "\nn0 = 256\n", "\ndiffusion = 0.0001\n"})
    EXPECT_NE(config.find(line), std::string::npos) << line << " missing in\n" << config;
  o = run_cli("train --config " + (dir / "a" / "config.ini").string() + " --quiet --out " + (dir / "b").string());
  ASSERT_EQ(o.status, 0) << o.err;
  const auto a = nlohmann::json::parse(slurp(dir / "a" / "summary.json"));
  const auto b = nlohmann::json::parse(slurp(dir / "b" / "summary.json"));
  EXPECT_EQ(a["final_loss"].get<double>(), b["final_loss"].get<double>());
  EXPECT_EQ(a["metric"].get<double>(), b["metric"].get<double>());
  EXPECT_EQ(trajectory(dir / "a" / "history.csv"), trajectory(dir / "b" / "history.csv"));
  EXPECT_EQ(slurp(dir / "b" / "config.ini"), config);
  // Trust-region defaults too.
  o = run_cli("train --problem poisson1d --solver tr --epochs 2" + kTiny + "--out " + (dir / "tr").string());
  ASSERT_EQ(o.status, 0) << o.err;
  const auto tr = ini_values(dir / "tr" / "config.ini");
  EXPECT_EQ(tr.at("radius"), "0.10000000000000001");
  EXPECT_EQ(tr.at("eta1"), "0.25");
  EXPECT_EQ(tr.at("tr-model"), "first_order");
}

TEST(CliConfig, ACheckpointWrittenBeforeDefaultsWereRecordedStillResumes) {
  const fs::path dir = scratch("config_old_checkpoint");
  const std::string run = "train --problem poisson1d --solver lbfgs --metric-every 1" + kTiny;
  ASSERT_EQ(run_cli(run + "--epochs 6 --out " + (dir / "whole").string()).status, 0);
  // What an older ddtrain left: config.ini and checkpoint identity without the defaults that
  // have no Boost default (the problem's model and bc-weight, the solver's lr).
  const std::set<std::string> unrecorded = {"model", "bc-weight", "lr"};
  ASSERT_EQ(run_cli(run + "--epochs 3 --out " + (dir / "old").string()).status, 0);
  const fs::path checkpoint = dir / "old" / "checkpoint" / "rank-0.pt";
  ddtrain::RunIdentity identity = identity_of(checkpoint);
  ASSERT_EQ(identity.at("lr"), "1");
  for (const auto& key : unrecorded) identity.erase(key);
  rewrite_identity(checkpoint, identity);
  drop_lines(dir / "old" / "config.ini", unrecorded);
  Outcome o = run_cli("train --resume " + (dir / "old").string() + " --epochs 6 --quiet");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(trajectory(dir / "old" / "history.csv"), trajectory(dir / "whole" / "history.csv"));

  // A new checkpoint resumed with an old config.ini (the defaults left out) resumes too.
  ASSERT_EQ(run_cli(run + "--epochs 3 --out " + (dir / "new").string()).status, 0);
  drop_lines(dir / "new" / "config.ini", unrecorded);
  o = run_cli("train --resume " + (dir / "new").string() + " --epochs 6 --quiet");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(trajectory(dir / "new" / "history.csv"), trajectory(dir / "whole" / "history.csv"));

  // A value other than the default still makes another run.
  ASSERT_EQ(run_cli(run + "--epochs 3 --out " + (dir / "other").string()).status, 0);
  identity = identity_of(dir / "other" / "checkpoint" / "rank-0.pt");
  identity["lr"] = "0.5";
  rewrite_identity(dir / "other" / "checkpoint" / "rank-0.pt", identity);
  o = run_cli("train --resume " + (dir / "other").string() + " --epochs 6 --quiet");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("lr is '0.5' in the checkpoint but '1' in this run"), std::string::npos) << o.err;
}
