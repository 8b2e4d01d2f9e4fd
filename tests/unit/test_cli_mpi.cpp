// `mpirun ... ddtrain train` end to end (compiled only when MPI is enabled): a rank that dies
// (SIGKILL) or throws ends the whole job quickly, with a non-zero status and a message naming
// the rank; runs are reproducible and resumable under MPI; a checkpoint of another rank count
// is refused.
#ifdef DDTRAIN_MPIEXEC
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli_helpers.hpp"

using namespace ddtrain::test;
namespace fs = std::filesystem;

namespace {

std::string mpirun(int ranks) {
  return std::string(DDTRAIN_MPIEXEC) + " -np " + std::to_string(ranks) + " --oversubscribe ";
}

/// The pid of the process of `rank` among the descendants of `parent` (read from /proc).
pid_t find_rank_process(pid_t parent, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream environ(entry.path() / "environ", std::ios::binary);
    std::string variable;
    bool rank_matches = false;
    while (std::getline(environ, variable, '\0'))
      if (variable == "OMPI_COMM_WORLD_RANK=" + std::to_string(rank)) rank_matches = true;
    if (!rank_matches) continue;
    // Walk up the parents: must descend from `parent` (other tests may run mpirun too).
    pid_t pid = std::stoi(name);
    for (pid_t p = pid; p > 1;) {
      std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
      std::string line;
      std::getline(stat, line);
      const auto close = line.rfind(')');
      if (close == std::string::npos) break;
      std::istringstream rest(line.substr(close + 2));
      char state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid == parent) return pid;
      p = ppid;
    }
  }
  return -1;
}

const std::string kEndless =
    " train --problem poisson1d --solver adam --lr 1e-4 --precision float64 --nf 64 --depth 2 --width 6"
    " --quiet --epochs 100000000 --checkpoint-every 5 --threads 1 ";

}  // namespace

TEST(DeadRanks, AKilledRankEndsTheJobWithin30Seconds) {
  for (int ranks : {2, 3}) {
    const fs::path dir = scratch("dead_rank_" + std::to_string(ranks));
    const int victim = ranks - 1;
    BackgroundRun job(mpirun(ranks) + DDTRAIN_CLI_PATH + kEndless + "--out " + (dir / "run").string(),
                      dir / "log");
    ASSERT_TRUE(wait_for_file(dir / "run" / "checkpoint" / ("rank-" + std::to_string(victim) + ".pt"), 120))
        << slurp(dir / "log");
    const pid_t pid = find_rank_process(job.pid(), victim);
    ASSERT_GT(pid, 0) << "rank " << victim << " not found";
    const auto t0 = std::chrono::steady_clock::now();
    kill(pid, SIGKILL);
    const int status = job.wait(30);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(status, -1000) << "the job still ran 30 s after rank " << victim << " was killed";
    EXPECT_NE(status, 0);
    EXPECT_LT(seconds, 30);
    const std::string log = slurp(dir / "log");
    EXPECT_NE(log.find("rank " + std::to_string(victim)), std::string::npos) << log;
  }
}

TEST(DeadRanks, AKilledEnsembleMemberEndsTheJob) {
  // --ensemble members train without communicating: the others must not train on (or wait in
  // the final gather) after one is killed.
  const fs::path dir = scratch("dead_member");
  BackgroundRun job(mpirun(2) + DDTRAIN_CLI_PATH + kEndless + "--ensemble --rhs-frequency 1,2 --out " +
                        (dir / "run").string(),
                    dir / "log");
  ASSERT_TRUE(wait_for_file(dir / "run" / "checkpoint" / "rank-1.pt", 120)) << slurp(dir / "log");
  ASSERT_TRUE(fs::exists(dir / "run" / "members" / "1" / "history.csv"));
  const pid_t pid = find_rank_process(job.pid(), 1);
  ASSERT_GT(pid, 0) << "member 1 not found";
  kill(pid, SIGKILL);
  const int status = job.wait(30);
  EXPECT_NE(status, -1000) << "the ensemble still ran 30 s after member 1 was killed";
  EXPECT_NE(status, 0);
  EXPECT_NE(slurp(dir / "log").find("rank 1"), std::string::npos) << slurp(dir / "log");
}

TEST(DeadRanks, AnErrorOnOneRankEndsTheJob) {
  const fs::path dir = scratch("throwing_rank");
  const fs::path run = dir / "run";
  const std::string common = " train --problem poisson1d --solver lbfgs --precision float64 --nf 64 "
                             "--depth 2 --width 6 --quiet --threads 1 ";
  ASSERT_EQ(std::system((mpirun(2) + DDTRAIN_CLI_PATH + common + "--epochs 3 --out " + run.string() +
                         " >" + (dir / "log").string() + " 2>&1").c_str()), 0)
      << slurp(dir / "log");
  // Rank 1 cannot resume (its checkpoint is gone) while rank 0 can and waits for it.
  fs::remove(run / "checkpoint" / "rank-1.pt");
  BackgroundRun job(mpirun(2) + DDTRAIN_CLI_PATH + " train --resume " + run.string() + " --epochs 6",
                    dir / "log2");
  const int status = job.wait(30);
  EXPECT_NE(status, -1000) << "the job hangs after an error on rank 1";
  EXPECT_NE(status, 0);
  const std::string log = slurp(dir / "log2");
  EXPECT_NE(log.find("ddtrain: error: rank 1: --resume"), std::string::npos) << log;
}

TEST(CliMpi, InterruptedRanksStopTogetherAndTheJobExits2) {
  // `kill -INT` to the ranks (as Ctrl-C on a terminal reaches them, with mpirun, in one process
  // group): every rank stops after the same iteration, writes its checkpoint and exits 2, which
  // mpirun passes on. Progress under mpirun is plain lines (its ranks' stdout is a pty).
  const fs::path dir = scratch("mpi_interrupt");
  std::string verbose = kEndless;
  verbose.replace(verbose.find("--quiet"), 7, "--progress-every 20");
  BackgroundRun job(mpirun(2) + DDTRAIN_CLI_PATH + verbose + "--out " + (dir / "run").string(), dir / "log");
  ASSERT_TRUE(wait_for_file(dir / "run" / "checkpoint" / "rank-1.pt", 120)) << slurp(dir / "log");
  for (int rank : {0, 1}) {
    const pid_t pid = find_rank_process(job.pid(), rank);
    ASSERT_GT(pid, 0) << "rank " << rank << " not found";
    kill(pid, SIGINT);
  }
  EXPECT_EQ(job.wait(60), 2) << slurp(dir / "log");
  const std::string summary = slurp(dir / "run" / "summary.json");
  EXPECT_NE(summary.find("\"termination\": \"interrupted\""), std::string::npos) << summary;
  const std::string log = slurp(dir / "log");
  EXPECT_NE(log.find("ddtrain: error: adam: training failed (interrupted)"), std::string::npos) << log;
  EXPECT_EQ(log.find('\r'), std::string::npos);
  EXPECT_EQ(log.rfind("iter 1  epoch 1  loss ", 0), 0u) << log.substr(0, 300);  // a line of its own
}

TEST(CliMpi, ASignalToMpirunEndsTheJobWithItsOwnStatus) {
  // Open MPI's mpirun answers SIGINT / SIGTERM by sending SIGTERM to the ranks (SIGKILL 1 s
  // later) and exits 1 whatever they return: documented in docs/failure-behaviour.md.
  const fs::path dir = scratch("mpi_interrupt_mpirun");
  BackgroundRun job(mpirun(2) + DDTRAIN_CLI_PATH + kEndless + "--out " + (dir / "run").string(), dir / "log");
  ASSERT_TRUE(wait_for_file(dir / "run" / "checkpoint" / "rank-1.pt", 120)) << slurp(dir / "log");
  job.signal(SIGINT);
  const int status = job.wait(60);
  EXPECT_NE(status, -1000) << "the job still ran 60 s after SIGINT to mpirun";
  EXPECT_EQ(status, 1) << slurp(dir / "log");
}

TEST(CliMpi, ReproducibleAndResumableOnTwoRanks) {
  const fs::path dir = scratch("mpi_resume");
  const std::string common = " train --problem allen_cahn --solver plbfgs --variant additive --subdomains 2"
                             " --precision float64 --nf 64 --depth 2 --width 6 --quiet --threads 1"
                             " --metric-every 2 ";
  auto mpi_train = [&](const std::string& args, const std::string& log) {
    return std::system((mpirun(2) + DDTRAIN_CLI_PATH + args + " >" + (dir / log).string() + " 2>&1").c_str());
  };
  ASSERT_EQ(mpi_train(common + "--epochs 8 --out " + (dir / "a").string(), "log_a"), 0) << slurp(dir / "log_a");
  ASSERT_EQ(mpi_train(common + "--epochs 8 --out " + (dir / "b").string(), "log_b"), 0) << slurp(dir / "log_b");
  EXPECT_EQ(trajectory(dir / "a" / "history.csv"), trajectory(dir / "b" / "history.csv"));
  ASSERT_EQ(mpi_train(common + "--epochs 4 --out " + (dir / "part").string(), "log_p"), 0) << slurp(dir / "log_p");
  ASSERT_EQ(mpi_train(" train --resume " + (dir / "part").string() + " --epochs 8", "log_r"), 0) << slurp(dir / "log_r");
  EXPECT_EQ(trajectory(dir / "a" / "history.csv"), trajectory(dir / "part" / "history.csv"));
  // The checkpoint of 2 ranks does not resume on 1.
  expect_one_line_error("train --resume " + (dir / "part").string() + " --epochs 9",
                        "ranks is '2' in the checkpoint but '1' in this run");
}

/// The "final_loss" line of a summary.json, as written (all 17 digits).
std::string final_loss_line(const fs::path& summary) {
  std::istringstream lines(slurp(summary));
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"final_loss\"") != std::string::npos) return line;
  return "(no final_loss in " + summary.string() + ")";
}

TEST(CliMpi, FourRanksWithBlocksGiveTheSerialFinalLossExactly) {
  // The command, with --blocks 4 on both sides (default weak scaling) and one thread per
  // process: with PyTorch's MKL (CUDA LibTorch 2.x) a product's sums depend on the thread count,
  // and the default gives 1 process all cores but each of 4 ranks a quarter.
  const fs::path dir = scratch("mpi_blocks");
  const std::string args = std::string(DDTRAIN_CLI_PATH) +
                           " train --problem poisson1d --solver lbfgs --precision float64 --blocks 4 --threads 1 --quiet --out ";
  ASSERT_EQ(std::system((args + (dir / "one").string() + " >" + (dir / "log1").string() + " 2>&1").c_str()), 0)
      << slurp(dir / "log1");
  ASSERT_EQ(std::system((mpirun(4) + args + (dir / "four").string() + " >" + (dir / "log4").string() + " 2>&1").c_str()),
            0)
      << slurp(dir / "log4");
  EXPECT_EQ(final_loss_line(dir / "four" / "summary.json"), final_loss_line(dir / "one" / "summary.json"));
  EXPECT_EQ(trajectory(dir / "four" / "history.csv"), trajectory(dir / "one" / "history.csv"));
}

TEST(CliMpi, FewerBlocksThanRanksIsRefused) {
  const fs::path dir = scratch("mpi_blocks_refused");
  const int status = std::system((mpirun(2) + DDTRAIN_CLI_PATH +
                                  " train --problem poisson1d --solver lbfgs --blocks 1 --quiet --out " +
                                  (dir / "run").string() + " >" + (dir / "log").string() + " 2>&1").c_str());
  EXPECT_NE(status, 0);
  EXPECT_NE(slurp(dir / "log").find("--blocks 1 is smaller than the number of data-parallel ranks (2)"),
            std::string::npos)
      << slurp(dir / "log");
}

#endif  // DDTRAIN_MPIEXEC
