// `ddtrain train --ensemble` with per-member problem options (issue 23): a comma list gives one
// value per member; a list needs --ensemble and one value per rank; every member writes its own
// results under members/RANK and equals the serial run of that member alone (float64).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

using namespace ddtrain::test;
namespace fs = std::filesystem;

namespace {

const std::string kSmall =
    " --solver lbfgs --precision float64 --nf 32 --depth 2 --width 8 --epochs 6 --metric-every 2"
    " --threads 1 --quiet ";

/// The seed of ensemble member `r` with --seed 0 (docs/user-guide.md).
std::string member_seed(int r) { return std::to_string(1000003LL * r); }

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST(EnsembleOptions, AListWithoutEnsembleIsRefused) {
  const fs::path dir = scratch("ensemble_list_no_ensemble");
  expect_one_line_error("train --problem poisson1d --rhs-frequency 1,2 --epochs 1 --quiet --out " +
                            (dir / "run").string(),
                        "--rhs-frequency '1,2' is a list (one value per ensemble member): lists need --ensemble");
  EXPECT_FALSE(fs::exists(dir / "run"));
  expect_one_line_error("train --problem function_fit --fit-frequency 1,3 --epochs 1 --quiet",
                        "lists need --ensemble");
  expect_one_line_error("train --problem allen_cahn --diffusion 1e-4,1e-3 --epochs 1 --quiet",
                        "lists need --ensemble");
}

TEST(EnsembleOptions, AListOfAnotherLengthThanTheRanksIsOneErrorBeforeAnyWork) {
  const fs::path dir = scratch("ensemble_list_mismatch");
  expect_one_line_error("train --problem poisson1d --ensemble --rhs-frequency 1,2 --epochs 1 --quiet --out " +
                            (dir / "run").string(),
                        "--rhs-frequency gives 2 ensemble members but the job has 1 rank(s)");
  EXPECT_FALSE(fs::exists(dir / "run"));
}

TEST(EnsembleOptions, MalformedListsAreRefused) {
  expect_one_line_error("train --problem poisson1d --ensemble --rhs-frequency 1,x --epochs 1 --quiet",
                        "--rhs-frequency '1,x': 'x' is not a finite number");
  expect_one_line_error("train --problem poisson1d --ensemble --rhs-frequency 1,,2 --epochs 1 --quiet",
                        "'' is not a finite number");
  expect_one_line_error("train --problem poisson1d --ensemble --rhs-amplitude 1,inf --epochs 1 --quiet",
                        "'inf' is not a finite number");
  expect_one_line_error("train --problem poisson1d --ensemble --rhs-frequency 1,2 --rhs-amplitude 1,2,3 --epochs 1",
                        "--rhs-amplitude has 3 values and --rhs-frequency 2");
  // Every member's values are checked before any work, not only rank 0's.
  expect_one_line_error("train --problem poisson1d --ensemble --rhs-frequency 1,-2 --epochs 1 --quiet",
                        "--rhs-frequency must be > 0, got -2");
  expect_one_line_error("train --problem allen_cahn --ensemble --reaction 5,-1 --epochs 1 --quiet",
                        "--reaction must be >= 0, got -1");
}

TEST(EnsembleOptions, AllenCahnCoefficientListsNeedTheComputedReference) {
  // One reference file cannot be the solution for members with different coefficients: the
  // metric would be wrong, so the combination is refused (without --reference each member's
  // reference is computed with its own coefficients).
  expect_one_line_error("train --problem allen_cahn --ensemble --diffusion 1e-4,1e-3 --reference /nonexistent/AC.mat "
                        "--epochs 1 --quiet",
                        "--diffusion with one value per member needs the computed reference");
  expect_one_line_error("train --problem allen_cahn --ensemble --reaction 5,4 --reference /nonexistent/AC.mat "
                        "--epochs 1 --quiet",
                        "--reaction with one value per member needs the computed reference");
}

TEST(EnsembleOptions, PoissonAmplitudeAndFrequencyChangeTheProblem) {
  // A serial run with A = 1, K = 2 given is the default run (same trajectory), and another
  // frequency or amplitude is another problem (another trajectory).
  const fs::path dir = scratch("ensemble_poisson_options");
  const std::string base = "train --problem poisson1d" + kSmall + "--out ";
  ASSERT_EQ(run_cli(base + (dir / "default").string()).status, 0);
  ASSERT_EQ(run_cli(base + (dir / "given").string() + " --rhs-amplitude 1 --rhs-frequency 2").status, 0);
  ASSERT_EQ(run_cli(base + (dir / "k1").string() + " --rhs-frequency 1").status, 0);
  ASSERT_EQ(run_cli(base + (dir / "a3").string() + " --rhs-amplitude 3").status, 0);
  const auto reference = trajectory(dir / "default" / "history.csv");
  ASSERT_GT(reference.size(), 3u);
  EXPECT_EQ(trajectory(dir / "given" / "history.csv"), reference);
  EXPECT_NE(trajectory(dir / "k1" / "history.csv"), reference);
  EXPECT_NE(trajectory(dir / "a3" / "history.csv"), reference);
  // config.ini records the values (defaults included).
  const std::string config = slurp(dir / "default" / "config.ini");
  EXPECT_NE(config.find("rhs-amplitude = 1\n"), std::string::npos) << config;
  EXPECT_NE(config.find("rhs-frequency = 2\n"), std::string::npos) << config;
}

#ifdef DDTRAIN_MPIEXEC
namespace {

std::string mpirun(int ranks) {
  return std::string(DDTRAIN_MPIEXEC) + " -np " + std::to_string(ranks) + " --oversubscribe ";
}

int system_logged(const std::string& command, const fs::path& log) {
  return std::system((command + " >" + log.string() + " 2>&1").c_str());
}

/// Runs an ensemble of `ranks` members with `lists` (per-member options) and, for every member,
/// the serial run of that member alone (its seed, its values); expects the same trajectory and
/// final loss bit for bit, and one summary row per member with its options and final metric.
void expect_members_equal_serial_runs(const std::string& name, const std::string& problem, int ranks,
                                      const std::vector<std::pair<std::string, std::vector<std::string>>>& lists) {
  const fs::path dir = scratch(name);
  std::string list_args;
  for (const auto& [option, values] : lists) {
    std::string joined;
    for (int r = 0; r < ranks; ++r) joined += (r ? "," : "") + values.at(static_cast<size_t>(r));
    list_args += " --" + option + " " + joined;
  }
  const std::string common = " train --problem " + problem + kSmall;
  ASSERT_EQ(system_logged(mpirun(ranks) + DDTRAIN_CLI_PATH + common + "--ensemble" + list_args + " --out " +
                              (dir / "ensemble").string(),
                          dir / "log"),
            0)
      << slurp(dir / "log");
  const nlohmann::json top = read_json(dir / "ensemble" / "summary.json");
  ASSERT_EQ(top["members"].size(), static_cast<size_t>(ranks)) << top.dump(2);
  std::vector<std::vector<std::string>> trajectories;
  for (int r = 0; r < ranks; ++r) {
    std::string member_args;
    for (const auto& [option, values] : lists) member_args += " --" + option + " " + values.at(static_cast<size_t>(r));
    const fs::path serial = dir / ("serial" + std::to_string(r));
    ASSERT_EQ(system_logged(std::string(DDTRAIN_CLI_PATH) + common + "--seed " + member_seed(r) + member_args +
                                " --out " + serial.string(),
                            dir / ("log" + std::to_string(r))),
              0)
        << slurp(dir / ("log" + std::to_string(r)));
    const fs::path member = dir / "ensemble" / "members" / std::to_string(r);
    for (const char* file : {"history.csv", "model.pt", "summary.json"})
      EXPECT_TRUE(fs::exists(member / file)) << member / file;
    trajectories.push_back(trajectory(member / "history.csv"));
    EXPECT_GT(trajectories.back().size(), 3u);
    EXPECT_EQ(trajectories.back(), trajectory(serial / "history.csv")) << "member " << r;
    const nlohmann::json alone = read_json(serial / "summary.json");
    const nlohmann::json mine = read_json(member / "summary.json");
    EXPECT_EQ(mine["final_loss"].get<double>(), alone["final_loss"].get<double>()) << "member " << r;
    EXPECT_EQ(mine["metric"].get<double>(), alone["metric"].get<double>()) << "member " << r;
    EXPECT_EQ(mine["member"], r);
    const nlohmann::json& row = top["members"][static_cast<size_t>(r)];
    EXPECT_EQ(row["member"], r);
    EXPECT_EQ(row["seed"].get<int64_t>(), std::stoll(member_seed(r)));
    EXPECT_EQ(row["final_loss"].get<double>(), alone["final_loss"].get<double>()) << row.dump();
    EXPECT_EQ(row["metric"].get<double>(), alone["metric"].get<double>()) << row.dump();
    for (const auto& [option, values] : lists)
      EXPECT_EQ(row["options"][option].get<double>(), std::stod(values.at(static_cast<size_t>(r)))) << row.dump();
  }
  // The members solved different problems.
  for (int r = 1; r < ranks; ++r) EXPECT_NE(trajectories[static_cast<size_t>(r)], trajectories[0]);
  // config.ini records the lists, and replays the ensemble.
  const std::string config = slurp(dir / "ensemble" / "config.ini");
  EXPECT_NE(config.find("ensemble = true"), std::string::npos) << config;
  ASSERT_EQ(system_logged(mpirun(ranks) + DDTRAIN_CLI_PATH + " train --config " +
                              (dir / "ensemble" / "config.ini").string() + " --quiet --out " +
                              (dir / "replay").string(),
                          dir / "log_replay"),
            0)
      << slurp(dir / "log_replay");
  for (int r = 0; r < ranks; ++r)
    EXPECT_EQ(trajectory(dir / "replay" / "members" / std::to_string(r) / "history.csv"),
              trajectories[static_cast<size_t>(r)])
        << "member " << r << " of the replay";
}

}  // namespace

TEST(EnsembleMpi, PoissonMembersEqualTheirSerialRunsOnTwoAndThreeRanks) {
  expect_members_equal_serial_runs("ensemble_poisson_2", "poisson1d", 2, {{"rhs-frequency", {"1", "2"}}});
  expect_members_equal_serial_runs("ensemble_poisson_3", "poisson1d", 3,
                                   {{"rhs-frequency", {"1", "2", "4"}}, {"rhs-amplitude", {"1", "0.5", "2"}}});
}

TEST(EnsembleMpi, FunctionFitAndAllenCahnMembersEqualTheirSerialRuns) {
  expect_members_equal_serial_runs("ensemble_fit_2", "function_fit", 2, {{"fit-frequency", {"1", "3"}}});
  expect_members_equal_serial_runs("ensemble_ac_2", "allen_cahn", 2,
                                   {{"diffusion", {"1e-4", "1e-3"}}, {"reaction", {"5", "3"}}});
}

TEST(EnsembleMpi, EveryMemberResumesFromItsCheckpoint) {
  // Each member keeps its own history in its checkpoint: a run resumed after 3 epochs ends with
  // every member's history equal to that of one run of 6.
  const fs::path dir = scratch("ensemble_resume");
  const std::string run = mpirun(2) + DDTRAIN_CLI_PATH +
                          " train --problem poisson1d --solver lbfgs --precision float64 --nf 32 --depth 2 --width 8"
                          " --metric-every 2 --threads 1 --quiet --ensemble --rhs-frequency 1,3 --out ";
  ASSERT_EQ(system_logged(run + (dir / "whole").string() + " --epochs 6", dir / "log_whole"), 0)
      << slurp(dir / "log_whole");
  ASSERT_EQ(system_logged(run + (dir / "part").string() + " --epochs 3", dir / "log_part"), 0)
      << slurp(dir / "log_part");
  ASSERT_EQ(system_logged(mpirun(2) + DDTRAIN_CLI_PATH + " train --resume " + (dir / "part").string() + " --epochs 6",
                          dir / "log_resume"),
            0)
      << slurp(dir / "log_resume");
  for (const char* member : {"0", "1"}) {
    const auto whole = trajectory(dir / "whole" / "members" / member / "history.csv");
    EXPECT_EQ(whole.size(), 7u) << member;  // header and 6 rows
    EXPECT_EQ(trajectory(dir / "part" / "members" / member / "history.csv"), whole) << "member " << member;
  }
  EXPECT_EQ(read_json(dir / "part" / "summary.json")["members"][1]["final_loss"],
            read_json(dir / "whole" / "summary.json")["members"][1]["final_loss"]);
}

TEST(EnsembleMpi, AListOfAnotherLengthThanTheRanksIsOneErrorLine) {
  const fs::path dir = scratch("ensemble_mpi_mismatch");
  const int status = system_logged(mpirun(2) + DDTRAIN_CLI_PATH +
                                       " train --problem poisson1d --ensemble --rhs-frequency 1,2,4 --quiet --out " +
                                       (dir / "run").string(),
                                   dir / "log");
  EXPECT_NE(status, 0);
  const std::string log = slurp(dir / "log");
  EXPECT_NE(log.find("ddtrain: error: rank 0: --rhs-frequency gives 3 ensemble members but the job has 2 rank(s): "
                     "give one value per rank (mpirun -np 3)"),
            std::string::npos)
      << log;
  size_t errors = 0;
  for (size_t at = log.find("ddtrain: error"); at != std::string::npos; at = log.find("ddtrain: error", at + 1))
    ++errors;
  EXPECT_EQ(errors, 1u) << log;
  EXPECT_FALSE(fs::exists(dir / "run")) << "a refused run leaves no directory";
}
#endif  // DDTRAIN_MPIEXEC
