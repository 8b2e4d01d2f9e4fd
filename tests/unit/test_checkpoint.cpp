// Checkpoints and restart: a resumed float64 run ends with the same history and parameters as
// an uninterrupted one (full batch and mid-epoch mini-batch), also after SIGINT and SIGKILL;
// checkpoints of another configuration and corrupt checkpoints are refused with one line.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "cli_helpers.hpp"
#include "test_files.hpp"

using namespace ddtrain::test;
namespace fs = std::filesystem;

namespace {

const std::string kPoisson =
    " --problem poisson1d --precision float64 --nf 64 --depth 2 --width 6 --quiet --metric-every 3 ";

torch::Tensor checkpoint_tensor(const fs::path& run, const std::string& name) {
  torch::serialize::InputArchive archive;
  archive.load_from((run / "checkpoint" / "rank-0.pt").string());
  torch::Tensor t;
  archive.read(name, t);
  return t;
}

void expect_same_run(const fs::path& a, const fs::path& b) {
  const auto ta = trajectory(a / "history.csv"), tb = trajectory(b / "history.csv");
  ASSERT_GT(ta.size(), 2u);
  EXPECT_EQ(ta, tb);
  auto sa = nlohmann::json::parse(slurp(a / "summary.json"));
  auto sb = nlohmann::json::parse(slurp(b / "summary.json"));
  EXPECT_EQ(sa["final_loss"], sb["final_loss"]);
  EXPECT_EQ(sa["metric"], sb["metric"]);
  EXPECT_EQ(sa["iterations"], sb["iterations"]);
  EXPECT_TRUE(torch::equal(checkpoint_tensor(a, "parameters"), checkpoint_tensor(b, "parameters")));
}

}  // namespace

TEST(Checkpoint, ResumedFullBatchRunEqualsTheUninterruptedOne) {
  const fs::path dir = scratch("resume_full");
  // bfgs with a warm-up: H, the counters, the next direction and the chain's phase (the
  // checkpoint at epoch 4 falls in the warm-up, the one at 8 after it) resume exactly.
  for (const char* solver : {"lbfgs", "adam", "bfgs --warmup adam:6 --update ssbroyden1"}) {
    const std::string common = kPoisson + "--solver " + solver + " ";
    const fs::path base = dir / std::string(solver).substr(0, std::string(solver).find(' '));
    ASSERT_EQ(run_cli("train --epochs 24" + common + "--out " + (base / "full").string()).status, 0);
    Outcome part = run_cli("train --epochs 10 --checkpoint-every 4" + common + "--out " +
                           (base / "part").string());
    ASSERT_EQ(part.status, 0) << part.err;
    // Budgets may change on resume; everything else comes from the run's config.ini.
    Outcome resumed = run_cli("train --resume " + (base / "part").string() + " --epochs 24");
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    expect_same_run(base / "full", base / "part");
  }
}

TEST(Checkpoint, ResumedMidEpochMiniBatchRunEqualsTheUninterruptedOne) {
  const fs::path dir = scratch("resume_minibatch");
  // 60 training images, batch 8: 8 batches per epoch; stop after 11 steps = inside epoch 2.
  const uint32_t n = 60, side = 8;
  fs::create_directories(dir / "data");
  Bytes labels;
  for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  write_plain(dir / "data" / "train-images-idx3-ubyte", idx_bytes(0x803, {n, side, side}, pattern(n * side * side, 3)));
  write_plain(dir / "data" / "train-labels-idx1-ubyte", idx_bytes(0x801, {n}, labels));
  write_plain(dir / "data" / "t10k-images-idx3-ubyte", idx_bytes(0x803, {n, side, side}, pattern(n * side * side, 4)));
  write_plain(dir / "data" / "t10k-labels-idx1-ubyte", idx_bytes(0x801, {n}, labels));
  const std::string common = " --problem mnist --data " + (dir / "data").string() +
                             " --hidden 16 --batch-size 8 --precision float64 --quiet --epochs 4 ";
  for (const char* solver : {"adam", "sgd --momentum 0.9"}) {
    const fs::path base = dir / std::string(solver).substr(0, 3);
    ASSERT_EQ(run_cli("train --solver " + std::string(solver) + common + "--out " + (base / "full").string()).status, 0);
    Outcome part = run_cli("train --solver " + std::string(solver) + common + "--max-iterations 11 --out " +
                           (base / "part").string());
    ASSERT_EQ(part.status, 0) << part.err;
    EXPECT_EQ(checkpoint_tensor(base / "part", "state")[1].item<double>(), 3);  // next batch 3 of epoch 2
    Outcome resumed = run_cli("train --resume " + (base / "part").string() + " --max-iterations 0");
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    expect_same_run(base / "full", base / "part");
  }
}

TEST(Checkpoint, InterruptedAndKilledRunsResumeToTheSameResult) {
  const fs::path dir = scratch("resume_signals");
  // Adam never converges by itself: the run goes on until it is signalled.
  const std::string common = kPoisson + "--solver adam --lr 1e-4 --checkpoint-every 5 ";
  for (int sig : {SIGINT, SIGKILL}) {
    const fs::path run = dir / (sig == SIGINT ? "int" : "kill");
    {
      BackgroundRun background(std::string(DDTRAIN_CLI_PATH) + " train --epochs 1000000" + common +
                               "--out " + run.string(), dir / "log");
      ASSERT_TRUE(wait_for_file(run / "checkpoint" / "rank-0.pt", 60)) << slurp(dir / "log");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      background.signal(sig);
      const int status = background.wait(30);
      if (sig == SIGINT) {
        // Finishes the iteration, writes checkpoint and summary, exits non-zero.
        EXPECT_GT(status, 0) << slurp(dir / "log");
        auto summary = nlohmann::json::parse(slurp(run / "summary.json"));
        EXPECT_EQ(summary["termination"], "interrupted");
      } else {
        EXPECT_EQ(status, -SIGKILL);
      }
    }
    for (const auto& entry : fs::recursive_directory_iterator(run))
      EXPECT_NE(entry.path().extension(), ".tmp") << "left over: " << entry.path();
    const int64_t stopped_at = static_cast<int64_t>(checkpoint_tensor(run, "state")[0].item<double>());
    const int64_t epochs = stopped_at + 7;
    ASSERT_EQ(run_cli("train --epochs " + std::to_string(epochs) + common + "--out " +
                      (run.string() + "_full")).status, 0);
    Outcome resumed = run_cli("train --resume " + run.string() + " --epochs " + std::to_string(epochs));
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    expect_same_run(run.string() + "_full", run);
  }
}

TEST(Checkpoint, ForeignOrCorruptCheckpointsAreRefused) {
  const fs::path dir = scratch("resume_refused");
  const fs::path run = dir / "run";
  ASSERT_EQ(run_cli("train --epochs 3 --solver lbfgs" + kPoisson + "--out " + run.string()).status, 0);
  expect_one_line_error("train --resume " + run.string() + " --width 7",
                        "width is '6' in the checkpoint but '7' in this run");
  expect_one_line_error("train --resume " + run.string() + " --solver adam", "another solver or problem");
  expect_one_line_error("train --resume " + run.string() + " --config " + (run / "config.ini").string(),
                        "do not give --config");
  expect_one_line_error("train --resume " + (dir / "nothing").string(), "no config.ini");
  expect_one_line_error("train --checkpoint-every 2 --epochs 3", "--checkpoint-every needs --out");
  // Truncated file.
  const fs::path file = run / "checkpoint" / "rank-0.pt";
  const auto size = fs::file_size(file);
  fs::resize_file(file, size / 2);
  expect_one_line_error("train --resume " + run.string(), "unreadable or corrupt");
  fs::remove(file);
  expect_one_line_error("train --resume " + run.string(), "no checkpoint");
}
