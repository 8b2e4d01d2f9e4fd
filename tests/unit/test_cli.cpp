// The `ddtrain` executable end to end: good runs write the results directory; bad input gives
// one clear error line on stderr, a non-zero exit, and nothing half-written.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>

#include "cli_helpers.hpp"
#include "ddtrain/reference/mat_file.hpp"

using namespace ddtrain::test;

namespace {

const std::string kFast = " --precision float64 --nf 32 --depth 2 --width 6 --quiet ";

}  // namespace

TEST(Cli, TrainWritesConfigHistoryAndSummary) {
  fs::path out = scratch("train") / "run";
  Outcome o = run_cli("train --problem poisson1d --solver lbfgs --epochs 5 --metric-every 2" + kFast +
                      "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  ASSERT_TRUE(fs::exists(out / "config.ini"));
  const std::string history = slurp(out / "history.csv");
  EXPECT_EQ(std::count(history.begin(), history.end(), '\n'), 6);  // header + 5 iterations
  auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  for (const char* key : {"problem", "solver", "ranks", "iterations", "evaluations", "final_loss",
                          "metric_name", "metric", "wall_time_s", "termination"})
    EXPECT_TRUE(summary.contains(key)) << key;
  EXPECT_EQ(summary["iterations"], 5);
  EXPECT_EQ(summary["metric_name"], "rel_l2");
  EXPECT_EQ(summary["termination"], "max_epochs");
  for (const auto& entry : fs::directory_iterator(out))
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  // The written config reproduces the run.
  fs::path again = out.parent_path() / "again";
  Outcome o2 = run_cli("train --config " + (out / "config.ini").string() + " --out " + again.string());
  ASSERT_EQ(o2.status, 0) << o2.err;
  EXPECT_EQ(slurp(again / "history.csv").substr(0, 80), history.substr(0, 80));
  EXPECT_EQ(nlohmann::json::parse(slurp(again / "summary.json"))["final_loss"], summary["final_loss"]);
}

TEST(Cli, SameSeedGivesIdenticalHistories) {
  // Same seed, ranks and precision: the same history.csv (all but the wall-time column).
  fs::path base = scratch("repro");
  for (const char* name : {"a", "b"})
    ASSERT_EQ(run_cli("train --problem function_fit --solver adam --epochs 20 --seed 7" + kFast + "--out " +
                      (base / name).string()).status, 0);
  EXPECT_EQ(trajectory(base / "a" / "history.csv"), trajectory(base / "b" / "history.csv"));
  EXPECT_EQ(nlohmann::json::parse(slurp(base / "a" / "summary.json"))["final_loss"],
            nlohmann::json::parse(slurp(base / "b" / "summary.json"))["final_loss"]);
  // Another seed, another history.
  ASSERT_EQ(run_cli("train --problem function_fit --solver adam --epochs 20 --seed 8" + kFast + "--out " +
                    (base / "c").string()).status, 0);
  EXPECT_NE(trajectory(base / "a" / "history.csv"), trajectory(base / "c" / "history.csv"));
  // The environment and the full configuration are recorded.
  auto summary = nlohmann::json::parse(slurp(base / "a" / "summary.json"));
  for (const char* key : {"ddtrain", "libtorch", "mpi", "hostname", "system", "compiler"})
    EXPECT_TRUE(summary["environment"].contains(key)) << key;
  EXPECT_EQ(summary["config"]["seed"], "7");
  EXPECT_EQ(summary["config"]["solver"], "adam");
}

TEST(Cli, HelpAndVersion) {
  Outcome o = run_cli("--version");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("ddtrain"), std::string::npos);
  o = run_cli("train --help");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("--epochs"), std::string::npos);
  EXPECT_NE(o.out.find("--history"), std::string::npos);
}

TEST(Cli, BadInputGivesOneClearLine) {
  expect_one_line_error("frobnicate", "unknown command 'frobnicate'");
  expect_one_line_error("train --problem nope", "unknown problem 'nope'");
  expect_one_line_error("train --solver nope", "unknown solver 'nope'");
  expect_one_line_error("train --bogus 3", "bogus");
  expect_one_line_error("train --epochs 0", "--epochs must be >= 1");
  expect_one_line_error("train --epochs -5", "--epochs must be >= 1");
  expect_one_line_error("train --epochs abc", "epochs");
  expect_one_line_error("train --epochs 3 --epochs 4", "epochs");
  expect_one_line_error("train --solver sgd --lr -1", "--lr must be > 0");
  expect_one_line_error("train --solver lbfgs --history 0", "--history must be >= 1");
  expect_one_line_error("train --solver adam --history 5", "does not apply to solver 'adam'");
  expect_one_line_error("train --solver plbfgs --local-memory forget", "unknown --local-memory 'forget'");
  expect_one_line_error("train --solver plbfgs --local-memory reset --keep-local-memory",
                        "--keep-local-memory contradicts --local-memory reset");
  expect_one_line_error("train --solver lbfgs --local-memory reset", "does not apply to solver 'lbfgs'");
  expect_one_line_error("train --nf 0", "--nf must be >= 1");
  expect_one_line_error("train --precision float16", "--precision 'float16'");
  if (!torch::cuda::is_available()) expect_one_line_error("train --device cuda", "no CUDA device");
  expect_one_line_error("train --device tpu", "--device 'tpu'");
  expect_one_line_error("train --comm nccl", "CUDA");
  expect_one_line_error("train --comm smoke", "unknown communicator 'smoke'");
  expect_one_line_error("train --config /nonexistent/ddtrain.ini", "cannot read --config");
  expect_one_line_error("train --solver lbfgs --partition 0-1", "--partition/--overlap apply only");
  expect_one_line_error("train --problem poisson1d --batch-size 10", "--batch-size does not apply");
  expect_one_line_error("train --activation cube", "unknown activation 'cube'");
  expect_one_line_error("train --quiet --verbose", "exclude each other");
  expect_one_line_error("reference allen_cahn", "needs --out");
  expect_one_line_error("compare --solvers", "needs a value");
}

// Library validate() messages name fields ("local.eta1 must be in [0, 1)"); the command line
// reports the option that sets each: foo_bar is --foo-bar, the rest comes from one table
// (src/cli/flag_names.cpp).
TEST(Cli, OptionErrorsNameTheOptionNotTheField) {
  expect_one_line_error("train --solver adam --lr 0", "--lr must be > 0");
  expect_one_line_error("train --solver adam --adam-epsilon 0", "--adam-epsilon must be > 0");
  expect_one_line_error("train --solver sgd --nesterov", "--nesterov needs --momentum > 0");
  expect_one_line_error("train --solver tr --global-steps 0", "--global-steps must be >= 1, got 0");
  expect_one_line_error("train --solver tr --eta1 0.5 --eta2 0.2", "--eta2 must be in [--eta1, 1)");
  expect_one_line_error("train --solver tr --dogleg", "--dogleg needs --tr-model lsr1");
  expect_one_line_error("train --solver sapts --local-steps 0", "--local-steps must be >= 1, got 0");
  expect_one_line_error("train --solver sapts --local-eta1 2", "--local-eta1 must be in [0, 1)");
  expect_one_line_error("train --solver sapts --radius-decrease 2", "--radius-decrease must be in (0, 1)");
  expect_one_line_error("train --solver sapts --tr-memory 0", "--tr-memory must be >= 1");
  expect_one_line_error("train --solver plbfgs --local-solver bfgs --local-lr 0.5",
                        "--local-lr does not apply to --local-solver bfgs");
  expect_one_line_error("train --solver plbfgs --variant multiplicative --combination weighted",
                        "--combination applies to --variant additive only");
  expect_one_line_error("train --time-limit -1", "--time-limit must be >= 0 seconds");
  expect_one_line_error("train --problem poisson1d --bc-weight -1", "--bc-weight must be >= 0");
  expect_one_line_error("train --problem allen_cahn --rad-every 2 --resample-every 2",
                        "--rad-every and --resample-every both redraw the collocation set: choose one");
  expect_one_line_error("train --problem allen_cahn --time-marching -1", "--time-marching must be >= 0");
  expect_one_line_error("train --problem allen_cahn --weight-factorization --factorization-std -1",
                        "--factorization-std must be finite and >= 0");
  expect_one_line_error("train --problem allen_cahn --model modified-mlp --derivatives fused",
                        "--derivatives fused: it needs --model resnet or fc (--derivatives auto picks taylor then)");
  expect_one_line_error("train --problem allen_cahn --model mlp",
                        "--model: unknown model 'mlp' (accepted: resnet, fc, modified-mlp)");
  expect_one_line_error("train --problem burgers --blocks 2 --scaling weak",
                        "--blocks needs --scaling strong (they cut the one serial collocation set into fixed pieces)");
  expect_one_line_error("train --problem allen_cahn --blocks 2 --causal-epsilon 1",
                        "--blocks cannot be combined with --causal-epsilon: the causal weights depend on every "
                        "residual point of a rank");
  expect_one_line_error("train --problem klein_gordon --blocks 20000", "--blocks 20000 exceeds --nf (10000)");
  expect_one_line_error("reference burgers --nx 1 --out x.mat", "--nx must be >= 2, got 1");
  expect_one_line_error("reference burgers --quadrature-nodes 4 --out x.mat",
                        "--quadrature-nodes (Gauss-Hermite) must be in [8, 600]");
}

TEST(Cli, ConfigFileErrorsNameTheFile) {
  fs::path dir = scratch("config");
  std::ofstream(dir / "bad.ini") << "epochs = 3\nno_such_key = 1\n";
  expect_one_line_error("train --config " + (dir / "bad.ini").string(), "no_such_key");
  std::ofstream(dir / "malformed.ini") << "epochs 3\n";
  expect_one_line_error("train --config " + (dir / "malformed.ini").string(), "malformed.ini");
}

TEST(Cli, ExistingOutputDirectoryNeedsOverwrite) {
  fs::path out = scratch("exists");
  std::ofstream(out / "keep.txt") << "precious";
  expect_one_line_error("train --epochs 1 --out " + out.string(), "--overwrite");
  EXPECT_EQ(slurp(out / "keep.txt"), "precious");
  EXPECT_FALSE(fs::exists(out / "summary.json"));
}

TEST(Cli, DivergingRunEndsWithNumericalFailureAndKeepsTheLastFiniteModel) {
  fs::path out = scratch("diverge") / "run";
  Outcome o = run_cli("train --problem function_fit --solver sgd --lr 1e12 --epochs 200" + kFast +
                      "--out " + out.string());
  EXPECT_EQ(o.status, 2) << o.err;  // training failed (not bad input: 1)
  auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(summary["termination"], "numerical_failure");
  EXPECT_LT(summary["iterations"].get<int>(), 200);
  ASSERT_TRUE(fs::exists(out / "model.pt"));
  torch::serialize::InputArchive archive;
  archive.load_from((out / "model.pt").string());
  std::vector<std::string> keys = archive.keys();
  ASSERT_FALSE(keys.empty());
  for (const auto& key : keys) {
    torch::Tensor t;
    if (archive.try_read(key, t)) {
      EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << key;
    }
  }
}

TEST(Cli, CompareWithoutSolversRunsTheDefaultAllenCahnComparison) {
  // The quick start's `ddtrain compare --overwrite`: the defaults fill what is not given.
  fs::path out = scratch("compare_default") / "cmp";
  Outcome o = run_cli("compare --epochs 2 --nf 64 --depth 2 --width 6 --no-plot --quiet --out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  const std::string table = slurp(out / "comparison.csv");
  for (const char* run : {"adam", "lbfgs", "plbfgs-additive", "plbfgs-multiplicative", "bfgs"})
    EXPECT_NE(table.find(std::string("\n") + run + ","), std::string::npos) << run << "\n" << table;
  EXPECT_NE(table.find("rel_l2"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "1-adam" / "field.csv"));
  // Again into the same directory: refused without --overwrite, accepted with it.
  expect_one_line_error("compare --epochs 2 --nf 64 --no-plot --out " + out.string(), "--overwrite");
  EXPECT_EQ(run_cli("compare --epochs 2 --nf 64 --depth 2 --width 6 --no-plot --quiet --overwrite --out " +
                    out.string()).status, 0);
}

TEST(Cli, PlotRendersTheConvergencePictures) {
  fs::path out = scratch("plot") / "run";
  ASSERT_EQ(run_cli("train --problem poisson1d --solver lbfgs --epochs 5" + kFast + "--out " + out.string()).status, 0);
  Outcome o = run_cli("plot " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_GT(fs::file_size(out / "plots" / "convergence.png"), 1000u);
  expect_one_line_error("plot", "needs a directory");
  expect_one_line_error("plot " + (out / "nothing").string(), "is not a directory");
  expect_one_line_error("plot " + out.string() + " --format gif", "--format 'gif'");
}

TEST(Cli, DenseQuasiNewtonWithWarmupRecordsItsCountersAndRefusesBadInput) {
  fs::path out = scratch("bfgs") / "run";
  Outcome o = run_cli("train --problem poisson1d --solver bfgs --update ssbroyden1 --warmup adam:3 "
                      "--warmup-lr 0.01 --epochs 8" + kFast + "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(summary["solver"], "bfgs");
  EXPECT_EQ(summary["iterations"], 8);
  EXPECT_EQ(summary["solver_counters"]["warmup_steps"], 3);
  for (const char* key : {"skipped_updates", "restarts", "scaled_updates", "failed_searches"})
    EXPECT_TRUE(summary["solver_counters"].contains(key)) << key;
  EXPECT_EQ(summary["config"]["update"], "ssbroyden1");
  EXPECT_EQ(summary["config"]["warmup"], "adam:3");

  expect_one_line_error("train --solver bfgs --update newton", "unknown --update 'newton'");
  expect_one_line_error("train --solver lbfgs --update bfgs", "does not apply to solver 'lbfgs'");
  expect_one_line_error("train --solver bfgs --warmup adam", "--warmup 'adam' is not adam:N or sgd:N");
  expect_one_line_error("train --solver bfgs --warmup adam:x", "--warmup 'adam:x'");
  expect_one_line_error("train --solver bfgs --warmup lbfgs:5", "--warmup 'lbfgs:5'");
  expect_one_line_error("train --solver bfgs --warmup adam:0", "N >= 1");
  expect_one_line_error("train --solver adam --warmup adam:5", "must differ from the main one");
  expect_one_line_error("train --solver bfgs --warmup-lr 0", "--warmup-lr must be > 0");
  expect_one_line_error("train --solver bfgs --dense-memory-limit -1", "--dense-memory-limit must be >= 0");
  // 0.01 MB is too small for the 600-parameter network's H: refused with the sizes.
  expect_one_line_error("train --problem poisson1d --solver bfgs --depth 2 --width 20 --dense-memory-limit 0.01",
                        "the dense inverse Hessian of");
}

TEST(Cli, PlbfgsWithDenseMemoriesRecordsTheirOptionsAndRefusesInapplicableOnes) {
  fs::path out = scratch("plbfgs_dense") / "run";
  Outcome o = run_cli("train --problem poisson1d --solver plbfgs --subdomains 2 --local-solver bfgs "
                      "--local-update ssbfgs-ab --global-solver bfgs --epochs 4" + kFast + "--out " +
                      out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(summary["config"]["local-update"], "ssbfgs-ab");
  EXPECT_EQ(summary["config"]["global-update"], "ssbroyden2");
  EXPECT_EQ(summary["config"]["accumulate"], "nonblocking");
  EXPECT_FALSE(summary["config"].contains("local-history"));  // does not apply: not recorded
  EXPECT_FALSE(summary["config"].contains("history"));
  EXPECT_TRUE(summary["solver_counters"].contains("scaled_global_updates"));
  EXPECT_TRUE(summary["solver_counters"].contains("local_scaled_updates"));
  // config.ini replays it.
  Outcome replay = run_cli("train --config " + (out / "config.ini").string() + " --out " +
                           (out.parent_path() / "replay").string());
  ASSERT_EQ(replay.status, 0) << replay.err;
  auto again = nlohmann::json::parse(slurp(out.parent_path() / "replay" / "summary.json"));
  EXPECT_EQ(again["final_loss"], summary["final_loss"]);

  expect_one_line_error("train --solver plbfgs --local-update bfgs", "--local-update applies to --local-solver bfgs only");
  expect_one_line_error("train --solver plbfgs --local-solver bfgs --local-history 5", "--local-history applies");
  expect_one_line_error("train --solver plbfgs --local-solver bfgs --local-lr 0.1", "--local-lr does not apply");
  expect_one_line_error("train --solver plbfgs --global-solver bfgs --history 5", "--history applies");
  expect_one_line_error("train --solver plbfgs --global-update bfgs", "--global-update applies");
  expect_one_line_error("train --solver plbfgs --local-solver bfgs --local-update x", "unknown --local-update 'x'");
  expect_one_line_error("train --solver plbfgs --global-solver newton", "unknown --global-solver 'newton'");
  expect_one_line_error("train --solver plbfgs --accumulate later", "unknown --accumulate 'later'");
  expect_one_line_error("train --solver plbfgs --variant multiplicative --accumulate blocking",
                        "--accumulate applies to --variant additive only");
  expect_one_line_error("train --solver plbfgs --dense-memory-limit 100",
                        "--dense-memory-limit applies to plbfgs with --local-solver bfgs or --global-solver bfgs");
  expect_one_line_error("train --solver plbfgs --local-solver bfgs --dense-memory-limit -1",
                        "--dense-memory-limit must be >= 0");
  // The dense memories of a rank together, refused before any is allocated.
  expect_one_line_error("train --problem poisson1d --depth 2 --width 20 --solver plbfgs --subdomains 2 "
                        "--local-solver bfgs --dense-memory-limit 0.01",
                        "plbfgs: the dense inverse Hessians this rank keeps (2 subdomain block(s))");
  expect_one_line_error("train --problem poisson1d --depth 2 --width 20 --solver plbfgs --subdomains 2 "
                        "--global-solver bfgs --dense-memory-limit 0.5",
                        "(the global one of");
}

TEST(Cli, ATimeLimitWithoutEpochsRunsUntilTheLimit) {
  fs::path out = scratch("time_limit") / "run";
  Outcome o = run_cli("train --problem poisson1d --solver adam --time-limit 1.5" + kFast + "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(summary["termination"], "time_limit");
  EXPECT_GT(summary["iterations"].get<int64_t>(), 100);  // past the default --epochs 100
  // An explicit --epochs still ends the run first.
  o = run_cli("train --problem poisson1d --solver adam --time-limit 100 --epochs 5" + kFast + "--out " +
              (out.parent_path() / "epochs").string());
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(out.parent_path() / "epochs" / "summary.json"))["iterations"], 5);
}

TEST(Cli, StrayWordsDirectoriesAndOutOfRangeValuesAreRefusedUpFront) {
  expect_one_line_error("train allen_cahn", "too many positional options");
  fs::path dir = scratch("config_dir");
  expect_one_line_error("train --config " + dir.string(), "is a directory");
  expect_one_line_error("train --out ''", "--out needs a directory name");
  expect_one_line_error("train --seed -1", "--seed must be >= 0");
  expect_one_line_error("train --threads 10000", "--threads must be in [0, 1024]");
  // compare: every entry is checked before the first one trains (nothing is written).
  fs::path out = scratch("compare_early") / "cmp";
  expect_one_line_error("compare --problem poisson1d --solvers lbfgs,foo --epochs 50 --out " + out.string(),
                        "--solvers entry 'foo': unknown solver 'foo'");
  expect_one_line_error("compare --problem poisson1d --solvers lbfgs,adam:histroy=5 --out " + out.string(),
                        "--solvers entry 'adam:histroy=5'");
  expect_one_line_error("compare --problem poisson1d --solvers lbfgs,bfgs:update=newton --out " + out.string(),
                        "unknown --update 'newton'");
  EXPECT_FALSE(fs::exists(out));
  // Spaces after the commas are allowed.
  Outcome o = run_cli("compare --problem poisson1d --solvers 'adam, lbfgs' --epochs 2 --no-plot" + kFast +
                      "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(slurp(out / "comparison.csv").find("\nlbfgs,"), std::string::npos);
  // No command: usage, exit 2.
  o = run_cli("");
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.out.find("Usage: ddtrain <command>"), std::string::npos);
}

TEST(Cli, ATimeLimitBoundsTheWholeRunMetricEvaluationsIncluded) {
  // Allen-Cahn's metric (the network on the 512 x 201 reference grid) costs far more than a
  // step on 64 points: evaluated every iteration, it used to run 30x past the limit.
  fs::path out = scratch("time_limit_metric") / "run";
  Outcome o = run_cli("train --problem allen_cahn --solver adam --model fc --n0 32 --nb 32 "
                      "--metric-every 1 --time-limit 1.5" + kFast + "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(summary["termination"], "time_limit");
  const double elapsed = summary["elapsed_s"].get<double>(), train = summary["train_time_s"].get<double>();
  EXPECT_LE(elapsed, 1.5 + 2.0) << summary.dump(2);  // at most one iteration and its evaluation past it
  EXPECT_LT(train, elapsed);
  EXPECT_EQ(summary["wall_time_s"], summary["train_time_s"]);  // the earlier name, kept
}

TEST(Cli, ANonFiniteReferenceIsRefusedBeforeTheRunDirectoryIsMade) {
  fs::path dir = scratch("nan_reference");
  ddtrain::reference::ReferenceField field;
  field.x = {-1.0, -0.5, 0.0, 0.5};
  field.t = {0.0, 1.0};
  field.u = {0.1, 0.2, 0.3, 0.4, 0.5, std::nan(""), 0.7, 0.8};
  ddtrain::reference::write_reference_mat((dir / "nan.mat").string(), field);
  const std::string file = (dir / "nan.mat").string();
  expect_one_line_error("train --problem allen_cahn --reference " + file + " --out " + (dir / "run").string(),
                        "variable 'uu' holds 1 non-finite value (NaN or Inf; the first at index 5 of 8)");
  EXPECT_FALSE(fs::exists(dir / "run"));
  expect_one_line_error("compare --problem allen_cahn --solvers adam,lbfgs --reference " + file + " --out " +
                            (dir / "cmp").string(), "non-finite");
  EXPECT_FALSE(fs::exists(dir / "cmp"));
}

TEST(Cli, AHugePointCountNamesTheOptionAndItsBytes) {
  expect_one_line_error("train --nf 1000000000000",
                        "--nf 1000000000000 asks for at least 4000000000000 bytes (4 TB: one float32 value per point)");
  expect_one_line_error("train --problem allen_cahn --precision float64 --nb 1000000000000",
                        "--nb 1000000000000 asks for at least 8000000000000 bytes");
  expect_one_line_error("compare --problem poisson1d --solvers adam,lbfgs --nf 1000000000000", "--nf 1000000000000");
}

TEST(Cli, QuietNeverHidesWhyARunFailed) {
  fs::path out = scratch("quiet_failure") / "run";
  Outcome o = run_cli("train --problem function_fit --solver sgd --lr 1e12 --epochs 200" + kFast + "--out " +
                      out.string());
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.out, "");  // --quiet: no progress, no summary line
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  EXPECT_EQ(o.err.rfind("ddtrain: error: sgd: training failed (numerical_failure): the loss or the parameters "
                        "became non-finite", 0), 0u) << o.err;
  EXPECT_NE(o.err.find("results in " + out.string()), std::string::npos) << o.err;
}

TEST(Cli, ConfigIniIsPortableAndAResumeWithASmallerBudgetKeepsIt) {
  fs::path dir = scratch("portable_config");
  ddtrain::reference::ReferenceField field;
  field.x = {-1.0, -0.5, 0.0, 0.5};
  field.t = {0.0, 1.0};
  field.u = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8};
  ddtrain::reference::write_reference_mat((dir / "ref.mat").string(), field);
  const fs::path relative = fs::relative(dir / "ref.mat", fs::current_path());
  ASSERT_TRUE(relative.is_relative());
  const fs::path run = dir / "run";
  Outcome o = run_cli("train --problem allen_cahn --solver lbfgs --model fc --n0 16 --nb 16 --epochs 4 --reference " +
                      relative.string() + kFast + "--out " + run.string());
  ASSERT_EQ(o.status, 0) << o.err;
  const std::string config = slurp(run / "config.ini");
  EXPECT_NE(config.find("reference = " + fs::absolute(dir / "ref.mat").lexically_normal().string() + "\n"),
            std::string::npos) << config;
  EXPECT_EQ(config.find("quiet"), std::string::npos) << config;  // output switches are the replay's own
  EXPECT_EQ(config.find("verbose"), std::string::npos) << config;
  EXPECT_NE(config.find("epochs = 4\n"), std::string::npos) << config;
  // A smaller budget: nothing more to do, the recorded config stays; -v works (no recorded -q).
  o = run_cli("train --resume " + run.string() + " --epochs 2 --verbose");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("resumed from iteration 4 (epoch 4)"), std::string::npos) << o.out;
  EXPECT_EQ(slurp(run / "config.ini"), config);
  // A larger one is recorded.
  o = run_cli("train --resume " + run.string() + " --epochs 6");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(slurp(run / "config.ini").find("epochs = 6\n"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(slurp(run / "summary.json"))["iterations"], 6);
}

TEST(Cli, HistoryIsStreamedAndProgressInALogHasNoCarriageReturns) {
  fs::path out = scratch("streamed") / "run";
  const fs::path log = out.parent_path() / "log.txt";
  BackgroundRun run(std::string(DDTRAIN_CLI_PATH) + " train --problem poisson1d --solver adam --time-limit 4 "
                    "--progress-every 50 --precision float64 --nf 32 --depth 2 --width 6 --out " + out.string(), log);
  // While the run goes, history.csv already holds rows (the file of a finished run is
  // rewritten whole, so a row seen here before the end was streamed).
  size_t rows_while_running = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline && rows_while_running < 10) {
    if (!fs::exists(out / "summary.json") && fs::exists(out / "history.csv")) {
      const std::string history = slurp(out / "history.csv");
      rows_while_running = static_cast<size_t>(std::count(history.begin(), history.end(), '\n'));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(run.wait(30), 0);
  EXPECT_GE(rows_while_running, 10u);
  // stdout is a file, not a terminal: one plain line per report, no '\r'.
  const std::string printed = slurp(log);
  EXPECT_EQ(printed.find('\r'), std::string::npos);
  EXPECT_NE(printed.find("\niter 50  epoch 50  loss "), std::string::npos) << printed.substr(0, 300);
  const std::string history = slurp(out / "history.csv");
  EXPECT_EQ(static_cast<int64_t>(std::count(history.begin(), history.end(), '\n')),
            nlohmann::json::parse(slurp(out / "summary.json"))["iterations"].get<int64_t>() + 1);
}

TEST(Cli, HelpPrintsEachOptionGroupOnceWithShortDefaults) {
  auto count = [](const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  };
  Outcome o = run_cli("train --help");
  ASSERT_EQ(o.status, 0);
  EXPECT_EQ(count(o.out, "--train-subset"), 1u);  // mnist, fashion_mnist, cifar10: one block
  EXPECT_EQ(count(o.out, "--beta1"), 1u);
  EXPECT_EQ(o.out.find("0000000"), std::string::npos);  // no 0.90000000000000002
  EXPECT_NE(o.out.find("--beta1 arg (=0.9) "), std::string::npos);
  EXPECT_NE(o.out.find("(=1e-8)"), std::string::npos);
  // With --solver: that solver's and the chosen (default) problem's options only.
  o = run_cli("train --solver adam --help");
  ASSERT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("--beta1"), std::string::npos);
  EXPECT_NE(o.out.find("Problem 'poisson1d'"), std::string::npos);
  EXPECT_EQ(o.out.find("--radius"), std::string::npos);      // tr, apts, sapts
  EXPECT_EQ(o.out.find("--local-steps"), std::string::npos);  // plbfgs
  EXPECT_EQ(o.out.find("--rad-every"), std::string::npos);    // allen_cahn
  o = run_cli("train --problem allen_cahn --solver bfgs --help");
  EXPECT_NE(o.out.find("--rad-every"), std::string::npos);
  EXPECT_NE(o.out.find("--update"), std::string::npos);
  EXPECT_EQ(o.out.find("--beta1"), std::string::npos);
  // Every error line starts with "ddtrain: error:".
  for (const char* args : {"train --epochs 0", "frobnicate", "train --nf 1000000000000", "compare --solvers lbfgs,foo"}) {
    o = run_cli(args);
    EXPECT_EQ(o.err.rfind("ddtrain: error: ", 0), 0u) << args << ": " << o.err;
  }
}
