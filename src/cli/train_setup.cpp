#include "train_setup.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "ddtrain/device.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/solvers/warmup.hpp"
#include "results.hpp"

namespace ddtrain::cli {

namespace fs = std::filesystem;

po::options_description common_options() {
  po::options_description d("Common options");
  d.add_options()
    ("help,h", "print this help (with --solver/--problem: only their options)")
    ("problem", po::value<std::string>()->default_value("poisson1d"), "problem to train")
    ("solver", po::value<std::string>()->default_value("lbfgs"), "optimizer")
    ("config", po::value<std::string>(), "INI file with more options (command line wins)")
    ("out", po::value<std::string>(), "results directory (config.ini, history.csv, summary.json)")
    ("overwrite", po::bool_switch(), "allow an existing non-empty --out directory")
    ("checkpoint-every", po::value<int64_t>()->default_value(0),
     "epochs between checkpoints in DIR/checkpoint (0: only when the run ends or is interrupted)")
    ("resume", po::value<std::string>(), "continue the run in DIR from its checkpoint (its config.ini "
     "supplies the options; budgets such as --epochs may be changed)")
    ("precision", po::value<std::string>()->default_value("float32"), "float32 | float64")
    ("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda | cuda:N")
    ("comm", po::value<std::string>()->default_value("auto"), "auto | self | mpi | nccl")
    ("seed", po::value<int64_t>()->default_value(0), "seed of initialisation, sampling and batches (>= 0)")
    ("epochs", po::value<int64_t>()->default_value(100),
     "epoch budget (full-batch problems: iterations); with --time-limit and no --epochs: unlimited")
    ("max-iterations", po::value<int64_t>()->default_value(0), "solver-step budget (0: none)")
    ("time-limit", po::value<double>()->default_value(0.0),
     "wall-time budget of the whole run in s, metric evaluations included (0: none)")
    ("target", po::value<double>(), "stop when the metric reaches this value")
    ("metric-every", po::value<int64_t>()->default_value(10), "full batch: iterations between metric evaluations")
    ("batch-size", po::value<int64_t>(), "mini-batch size (classification; default 100)")
    ("warmup", po::value<std::string>()->default_value("none"),
     "first-order steps before --solver: adam:N or sgd:N (none: off)")
    ("warmup-lr", po::value<double>()->default_value(1e-3), "learning rate of the --warmup solver")
    ("subdomains", po::value<int>(), "parameter subdomains (plbfgs, apts) or data subdomains (sapts)")
    ("partition", po::value<std::string>(), "explicit layer groups, e.g. 0-1,2-3,4-5 (plbfgs, apts)")
    ("overlap", po::value<int>()->default_value(0), "layers of overlap on each side of a subdomain")
    ("ensemble", po::bool_switch(), "every rank trains its own model (own seed); results gathered")
    ("threads", po::value<int>()->default_value(0), "compute threads per process (0: cores / local ranks)")
    ("quiet,q", po::bool_switch(), "no progress output")
    ("verbose,v", po::bool_switch(), "print the set-up before training")
    ("progress-every", po::value<int64_t>()->default_value(10), "iterations between progress lines (pipes, logs)")
    ("log-format", po::value<std::string>()->default_value("text"),
     "stdout: text (lines for people) | jsonl (one JSON object per line, nothing else; errors on stderr)");
  return d;
}

namespace {

const SolverEntry& find_solver(const std::string& name) {
  auto it = solver_registry().find(name);
  DDTRAIN_CHECK(it != solver_registry().end(), InvalidArgument, "unknown solver '", name,
                "' (accepted: ", solver_names(), ")");
  return it->second;
}

const ProblemEntry& find_problem(const std::string& name) {
  auto it = problem_registry().find(name);
  DDTRAIN_CHECK(it != problem_registry().end(), InvalidArgument, "unknown problem '", name,
                "' (accepted: ", problem_names(), ")");
  return it->second;
}

po::options_description full_options(const SolverEntry& solver, const ProblemEntry& problem) {
  po::options_description all = common_options();
  po::options_description extra;
  // One description, options defined once: common ones win over solver and problem ones.
  for (const auto& option : all.options()) extra.add(option);
  if (solver.add_options) solver.add_options(extra);
  if (problem.add_options) problem.add_options(extra);
  return extra;
}

/// Which registrants define an option (for "does not apply to" messages).
std::string owners_of(const std::string& option) {
  std::string owners;
  for (const auto& [name, entry] : solver_registry()) {
    po::options_description d;
    if (entry.add_options) entry.add_options(d);
    if (d.find_nothrow(option, false)) owners += (owners.empty() ? "solver " : ", ") + name;
  }
  for (const auto& [name, entry] : problem_registry()) {
    po::options_description d;
    if (entry.add_options) entry.add_options(d);
    if (d.find_nothrow(option, false)) owners += (owners.empty() ? "problem " : ", ") + name;
  }
  return owners;
}

/// config.ini leaves out where the results go, how a run is started, and the output switches
/// (a replay or `--resume -v` chooses its own).
bool recorded_in_config(const std::string& key) {
  static const std::set<std::string> left_out = {"config", "help", "out", "overwrite", "resume", "quiet", "verbose",
                                                 "log-format"};
  return left_out.count(key) == 0;
}

/// --device cuda spreads a node's ranks over its GPUs by the launcher's local rank.
torch::Device device_for_rank(const std::string& text, const CommunicatorPtr& world) {
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  return parse_device(text, local ? std::atoi(local) : world->rank());
}

/// More threads than any node has cores: a typo (10000) is refused instead of hanging.
constexpr int kMaxThreads = 1024;

int default_threads() {
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int local_ranks = local ? std::max(1, std::atoi(local)) : 1;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local_ranks);
}

/// Bytes as "8 TB", "1.5 GB" (decimal units, three significant digits).
std::string human_bytes(double bytes) {
  const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1000 && u < 6) {
    bytes /= 1000;
    ++u;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3g %s", bytes, units[u]);
  return buffer;
}

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

/// The point counts of the problems (--nf, --n0, --nb, --rad-candidates): a count whose points
/// alone (one value each, a lower bound) exceed the machine's memory is refused with its bytes,
/// instead of failing in LibTorch's allocator with a raw message (or being killed later).
void check_point_counts(const po::variables_map& vm, const std::string& precision) {
  const double memory = physical_memory_bytes();
  if (memory <= 0) return;
  const double value_bytes = precision == "float64" ? 8.0 : 4.0;
  for (const char* name : {"nf", "n0", "nb", "rad-candidates"}) {
    auto it = vm.find(name);
    if (it == vm.end() || it->second.empty()) continue;
    const boost::any& value = it->second.value();
    double count = 0;
    if (const auto* v = boost::any_cast<int64_t>(&value)) count = static_cast<double>(*v);
    else if (const auto* w = boost::any_cast<int>(&value)) count = *w;
    const double bytes = count * value_bytes;
    std::ostringstream exact;
    exact.precision(0);
    exact << std::fixed << bytes;
    DDTRAIN_CHECK(bytes <= memory, InvalidArgument, "--", name, " ", format_value(value), " asks for at least ",
                  exact.str(), " bytes (", human_bytes(bytes), ": one ", precision, " value per point) but this "
                  "machine has ", human_bytes(memory), " of memory");
  }
}

/// The INI file to read: --config, or the config.ini of the run that --resume continues.
std::optional<std::string> config_file(const po::variables_map& vm) {
  if (vm.count("resume")) {
    DDTRAIN_CHECK(!vm.count("config"), InvalidArgument,
                  "--resume reads the options from DIR/config.ini; do not give --config as well");
    const fs::path dir = vm["resume"].as<std::string>();
    std::error_code ec;
    DDTRAIN_CHECK(fs::is_regular_file(dir / "config.ini", ec), IoError, "--resume '", dir.string(),
                  "': no config.ini there (not a ddtrain results directory)");
    return (dir / "config.ini").string();
  }
  if (vm.count("config")) {
    const fs::path file = vm["config"].as<std::string>();
    std::error_code ec;
    DDTRAIN_CHECK(!fs::is_directory(file, ec), InvalidArgument, "--config '", file.string(),
                  "' is a directory; give its config.ini (or use --resume DIR to continue a run)");
    return file.string();
  }
  return std::nullopt;
}

/// Options that do not change a run's trajectory: they may differ when it is resumed.
bool changes_trajectory(const std::string& key) {
  static const std::set<std::string> budgets_and_output = {
      "config", "help", "out", "overwrite", "resume", "checkpoint-every", "epochs", "max-iterations",
      "time-limit", "target", "metric-every", "quiet", "verbose", "progress-every", "log-format", "threads",
      "comm", "device"};
  return budgets_and_output.count(key) == 0;
}

}  // namespace

SolverPtr make_solver(const TrainSetup& setup) {
  OptionReader options(setup.vm);
  return find_solver(setup.solver).make(options);
}

WarmupSpec parse_warmup(const std::string& spec) {
  if (spec == "none") return {};
  const size_t colon = spec.find(':');
  WarmupSpec out;
  out.solver = spec.substr(0, colon);
  bool valid = colon != std::string::npos && (out.solver == "adam" || out.solver == "sgd");
  if (valid) {
    const std::string count = spec.substr(colon + 1);
    valid = !count.empty() && count.size() <= 12 &&
            count.find_first_not_of("0123456789") == std::string::npos;
    if (valid) out.steps = std::stoll(count);
  }
  DDTRAIN_CHECK(valid && out.steps >= 1, InvalidArgument, "--warmup '", spec,
                "' is not adam:N or sgd:N with N >= 1 steps (or none)");
  return out;
}

std::map<std::string, std::string> run_config(const TrainSetup& setup, const Run& run) {
  std::map<std::string, std::string> config;
  for (const auto& [key, value] : setup.vm)
    if (!value.empty() && recorded_in_config(key)) config[key] = format_value(value.value());
  // What the solver and problem resolved without a Boost default (a given option is in vm
  // already, with the same value).
  for (const auto& [key, option] : run.resolved) config.emplace(key, option.value);
  return config;
}

std::string config_ini(const TrainSetup& setup, const Run& run) {
  std::ostringstream out;
  out << "# ddtrain resolved options (defaults included); usable as --config\n";
  for (const auto& [key, value] : run_config(setup, run)) out << key << " = " << value << "\n";
  return out.str();
}

RunIdentity run_identity(const TrainSetup& setup, const Run& run) {
  RunIdentity identity;
  for (const auto& [key, value] : run_config(setup, run))
    if (changes_trajectory(key)) identity[key] = value;
  identity["ranks"] = std::to_string(run.world ? run.world->size() : 1);
  identity["parameters"] = std::to_string(run.problem ? run.problem->parameters().size() : 0);
  return identity;
}

namespace {
/// The same number ("100" and "100.0"), or else the same text.
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char *end_a = nullptr, *end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0' && x == y;
}
}  // namespace

RunIdentity identity_like_saved(RunIdentity expected, const RunIdentity& saved, const Run& run) {
  std::set<std::string> keys;
  for (const auto& [key, value] : expected) keys.insert(key);
  for (const auto& [key, value] : saved) keys.insert(key);
  for (const std::string& key : keys) {
    auto option = run.resolved.find(key);
    if (option == run.resolved.end()) continue;
    const std::string& fallback = option->second.fallback;
    const auto mine = expected.find(key);
    const auto theirs = saved.find(key);
    // Either side absent or at the default: the same trajectory.
    const bool mine_default = mine == expected.end() || same_value(mine->second, fallback);
    const bool theirs_default = theirs == saved.end() || same_value(theirs->second, fallback);
    if (!mine_default || !theirs_default) continue;
    if (theirs == saved.end()) expected.erase(key);
    else expected[key] = theirs->second;
  }
  return expected;
}

namespace {

/// A number as Boost prints a default, "0.90000000000000002", in its shortest form that reads
/// back to the same double, "0.9".
std::string shortest(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') return text;
  for (int digits = 1; digits <= 17; ++digits) {
    char buffer[40];
    std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
    if (std::strtod(buffer, nullptr) != value) continue;
    std::string out = buffer;  // 1e-08 -> 1e-8
    const size_t e = out.find('e');
    if (e != std::string::npos) {
      size_t digits_at = e + 1 + (out[e + 1] == '-' || out[e + 1] == '+');
      while (digits_at + 1 < out.size() && out[digits_at] == '0') out.erase(digits_at, 1);
      if (out[e + 1] == '+') out.erase(e + 1, 1);
    }
    return out;
  }
  return text;
}

/// Every "(=DEFAULT)" of Boost's option listing with the default in its shortest form (padded,
/// so that the descriptions stay in their column).
std::string with_shortest_defaults(const std::string& listing) {
  std::string out;
  size_t at = 0;
  for (size_t open; (open = listing.find("(=", at)) != std::string::npos;) {
    const size_t close = listing.find(')', open);
    if (close == std::string::npos) break;
    const std::string value = listing.substr(open + 2, close - open - 2);
    const std::string short_value = shortest(value);
    out += listing.substr(at, open + 2 - at) + short_value + ")";
    if (short_value.size() < value.size() && close + 1 < listing.size() && listing[close + 1] == ' ')
      out += std::string(value.size() - short_value.size(), ' ');
    at = close + 1;
  }
  return out + listing.substr(at);
}

/// The registrants' option blocks, each distinct block once (mnist, fashion_mnist and cifar10
/// share theirs), headed by the registrants that use it.
template <typename Registry>
void print_blocks(const Registry& registry, const char* kind, const std::string& only) {
  std::vector<std::pair<std::string, std::vector<std::string>>> blocks;  // options -> "name: summary"
  for (const auto& [name, entry] : registry) {
    if (!only.empty() && name != only) continue;
    po::options_description d;
    if (entry.add_options) entry.add_options(d);
    std::ostringstream text;
    text << d;
    auto it = std::find_if(blocks.begin(), blocks.end(), [&](const auto& b) { return b.first == text.str(); });
    if (it == blocks.end()) it = blocks.insert(blocks.end(), {text.str(), {}});
    it->second.push_back(name + "': " + entry.summary);
  }
  for (const auto& [options, owners] : blocks) {
    if (owners.size() == 1) {
      std::cout << kind << " '" << owners[0] << ":\n";
    } else {
      std::cout << kind << "s with the same options:\n";
      for (const auto& owner : owners) std::cout << "  '" << owner << "\n";
    }
    std::cout << with_shortest_defaults(options) << "\n";
  }
}

}  // namespace

void print_train_help(const std::string& solver, const std::string& problem) {
  std::cout << "Usage: ddtrain train [--problem NAME] [--solver NAME] [options]\n"
               "       mpirun -np P ddtrain train ...   (data-parallel / subdomain-parallel)\n\n"
               "Problems: " << problem_names() << "\nSolvers:  " << solver_names() << "\n";
  if (solver.empty() && problem.empty())
    std::cout << "(ddtrain train --solver S --problem P --help: only their options)\n";
  std::ostringstream common;
  common << common_options();
  std::cout << "\n" << with_shortest_defaults(common.str()) << "\n";
  print_blocks(solver_registry(), "Solver", solver);
  print_blocks(problem_registry(), "Problem", problem);
}

TrainSetup parse_train_setup(const std::vector<std::string>& args) {
  TrainSetup setup;
  // Pass 1: which solver and problem (their options join the parser in pass 2).
  po::variables_map first;
  try {
    po::store(po::command_line_parser(args).options(common_options()).allow_unregistered().run(), first);
  } catch (const po::error& e) {
    throw InvalidArgument(e.what());
  }
  if (const auto file = config_file(first)) {
    const std::string path = *file;
    std::ifstream config(path);
    DDTRAIN_CHECK(config.good(), IoError, "cannot read --config '", path, "'");
    try {
      po::store(po::parse_config_file(config, common_options(), true), first);
    } catch (const po::error& e) {
      throw InvalidArgument("--config '" + path + "': " + e.what());
    }
  }
  const std::string solver_name = first["solver"].as<std::string>();
  const std::string problem_name = first["problem"].as<std::string>();
  if (first.count("help")) {
    // With --solver or --problem: only the chosen solver's and problem's options (the
    // default of the one not given is the chosen one).
    const bool chosen = !first["solver"].defaulted() || !first["problem"].defaulted();
    print_train_help(chosen ? solver_name : "", chosen ? problem_name : "");
    setup.help_requested = true;
    return setup;
  }
  const SolverEntry& solver = find_solver(solver_name);
  const ProblemEntry& problem = find_problem(problem_name);
  const po::options_description options = full_options(solver, problem);

  // Pass 2: strict.
  po::variables_map& vm = setup.vm;
  try {
    // No positional arguments: a stray word (`ddtrain train allen_cahn`) is an error, not ignored.
    po::parsed_options parsed =
        po::command_line_parser(args).options(options).positional(po::positional_options_description()).run();
    po::store(parsed, vm);
    if (const auto file = config_file(vm)) {
      const std::string path = *file;
      std::ifstream config(path);
      DDTRAIN_CHECK(config.good(), IoError, "cannot read --config '", path, "'");
      try {
        po::store(po::parse_config_file(config, options, false), vm);
      } catch (const po::error& e) {
        if (vm.count("resume"))
          throw InvalidArgument("--resume: the run in '" + vm["resume"].as<std::string>() +
                                "' was made with another solver or problem (its config.ini: " + e.what() +
                                "); a run resumes only with its own");
        throw InvalidArgument("--config '" + path + "': " + e.what());
      }
    }
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    std::string option = e.get_option_name();
    while (!option.empty() && option[0] == '-') option.erase(0, 1);
    const std::string owners = owners_of(option);
    if (!owners.empty())
      throw InvalidArgument("option '--" + option + "' does not apply to solver '" + solver_name +
                            "' with problem '" + problem_name + "' (it belongs to " + owners + ")");
    throw InvalidArgument(std::string(e.what()) + " (see ddtrain train --help)");
  } catch (const po::error& e) {
    throw InvalidArgument(e.what());
  }
  setup.problem = problem_name;
  setup.solver = solver_name;
  if (vm.count("out")) {
    setup.out = vm["out"].as<std::string>();
    DDTRAIN_CHECK(!setup.out.empty(), InvalidArgument, "--out needs a directory name, got ''");
  }
  if (vm.count("resume")) {
    setup.resume = vm["resume"].as<std::string>();
    if (setup.out.empty()) setup.out = setup.resume;
  }
  // File options are recorded as absolute paths: config.ini replays, and --resume works, from
  // any directory.
  for (const char* name : {"reference", "data"}) {
    auto it = vm.find(name);
    if (it == vm.end() || it->second.empty()) continue;
    const std::string path = it->second.as<std::string>();
    if (path.empty()) continue;
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    if (!ec) it->second.value() = absolute.lexically_normal().string();
  }
  setup.overwrite = vm["overwrite"].as<bool>();
  setup.quiet = vm["quiet"].as<bool>();
  setup.verbose = vm["verbose"].as<bool>();
  DDTRAIN_CHECK(!(setup.quiet && setup.verbose), InvalidArgument, "--quiet and --verbose exclude each other");
  setup.progress_every = vm["progress-every"].as<int64_t>();
  DDTRAIN_CHECK(setup.progress_every >= 1, InvalidArgument, "--progress-every must be >= 1");
  setup.log_format = parse_log_format(vm["log-format"].as<std::string>());
  setup.ensemble = vm["ensemble"].as<bool>();

  TrainOptions& t = setup.train;
  t.epochs = vm["epochs"].as<int64_t>();
  // A time budget without an epoch budget means "until the time limit".
  if (vm["epochs"].defaulted() && vm["time-limit"].as<double>() > 0) {
    t.epochs = kUnlimitedEpochs;
    vm.at("epochs").value() = t.epochs;  // config.ini records the budget the run has
  }
  t.max_iterations = vm["max-iterations"].as<int64_t>();
  t.time_limit_s = vm["time-limit"].as<double>();
  DDTRAIN_CHECK(vm["seed"].as<int64_t>() >= 0, InvalidArgument, "--seed must be >= 0, got ",
                vm["seed"].as<int64_t>());
  t.seed = static_cast<uint64_t>(vm["seed"].as<int64_t>());
  t.metric_every = vm["metric-every"].as<int64_t>();
  t.checkpoint_every = vm["checkpoint-every"].as<int64_t>();
  DDTRAIN_CHECK(t.checkpoint_every == 0 || !setup.out.empty(), InvalidArgument,
                "--checkpoint-every needs --out (checkpoints go to DIR/checkpoint)");
  if (vm.count("batch-size")) t.batch_size = vm["batch-size"].as<int64_t>();
  if (vm.count("target")) t.target = vm["target"].as<double>();
  require_valid(t.validate());
  DDTRAIN_CHECK(vm["threads"].as<int>() >= 0 && vm["threads"].as<int>() <= kMaxThreads, InvalidArgument,
                "--threads must be in [0, ", kMaxThreads, "] (0: cores / local ranks), got ", vm["threads"].as<int>());
  DDTRAIN_CHECK(vm["overlap"].as<int>() >= 0, InvalidArgument, "--overlap must be >= 0");
  if (vm.count("subdomains"))
    DDTRAIN_CHECK(vm["subdomains"].as<int>() >= 1, InvalidArgument, "--subdomains must be >= 1, got ",
                  vm["subdomains"].as<int>());
  parse_warmup(vm["warmup"].as<std::string>());  // refuses a malformed spec before any work
  DDTRAIN_CHECK(vm["warmup-lr"].as<double>() > 0, InvalidArgument, "--warmup-lr must be > 0");
  const std::string precision = vm["precision"].as<std::string>();
  DDTRAIN_CHECK(precision == "float32" || precision == "float64", InvalidArgument, "--precision '",
                precision, "' (accepted: float32, float64)");
  check_point_counts(vm, precision);
  // The solver's and the problem's options as they resolve (their values checked): config.ini
  // records them all, defaults included.
  OptionReader reader(vm);
  reader.select_member({setup.ensemble, 0, 0});
  solver.make(reader);
  if (solver.data_parallel) solver.data_parallel(reader);
  problem.read_options(reader);
  setup.resolved = reader.resolved();
  setup.member_options = reader.member_options();
  // Per-member lists: all of one length; every member's options checked before any work.
  std::string first_list;
  for (const auto& [name, values] : setup.member_options) {
    if (values.size() < 2) continue;
    if (setup.list_members == 0) {
      setup.list_members = static_cast<int>(values.size());
      first_list = name;
    }
    DDTRAIN_CHECK(values.size() == static_cast<size_t>(setup.list_members), InvalidArgument, "--", first_list,
                  " has ", setup.list_members, " values and --", name, " ", values.size(),
                  ": every list has one value per ensemble member");
  }
  for (int member = 0; member < setup.list_members; ++member) {
    OptionReader member_reader(vm);
    member_reader.select_member({true, member, setup.list_members});
    problem.read_options(member_reader);
  }
  return setup;
}

nlohmann::json member_parameters(const TrainSetup& setup, int member) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, values] : setup.member_options)
    j[name] = values.size() > 1 ? values.at(static_cast<size_t>(member)) : values.front();
  return j;
}

uint64_t member_seed(uint64_t seed, int member) { return seed + 1000003ULL * static_cast<uint64_t>(member); }

Run build_run(const TrainSetup& setup) {
  const po::variables_map& vm = setup.vm;
  const SolverEntry& solver_entry = find_solver(setup.solver);
  const ProblemEntry& problem_entry = find_problem(setup.problem);
  Run run;
  run.train = setup.train;
  const std::string device_text = vm["device"].as<std::string>();
  // The backend choice needs the device kind; the device index needs the rank.
  const torch::Device kind = device_text == "cpu" ? torch::Device(torch::kCPU) : torch::Device(torch::kCUDA);
  run.world = make_communicator(parse_comm_backend(vm["comm"].as<std::string>()), kind);
  const torch::Device device = device_for_rank(device_text, run.world);
  const int threads = vm["threads"].as<int>() > 0 ? vm["threads"].as<int>() : default_threads();
  torch::set_num_threads(threads);

  CommunicatorPtr training_world = setup.ensemble ? std::make_shared<SelfComm>() : run.world;
  if (setup.list_members > 0 && setup.list_members != run.world->size()) {
    std::string lists;
    for (const auto& [name, values] : setup.member_options)
      if (values.size() > 1) lists += (lists.empty() ? "--" : ", --") + name;
    const std::string message = lists + " give" + (lists.find(',') == std::string::npos ? "s " : " ") +
                                std::to_string(setup.list_members) + " ensemble members but the job has " +
                                std::to_string(run.world->size()) + " rank(s): give one value per rank (mpirun -np " +
                                std::to_string(setup.list_members) + ")";
    // One line for the job: rank 0 says it (and ends the job); the others wait to be ended.
    if (run.world->rank() != 0) run.world->barrier();
    throw InvalidArgument(message);
  }
  OptionReader options(vm);
  if (setup.ensemble) {
    run.member = run.world->rank();
    options.select_member({true, run.member, run.world->size()});
  }
  const int data_parallel = setup.ensemble || !solver_entry.data_parallel ? 0 : solver_entry.data_parallel(options);
  run.layout = make_layout(training_world, data_parallel);

  RunSetup& rs = run.run_setup;
  rs.device = device;
  rs.dtype = vm["precision"].as<std::string>() == "float64" ? torch::kFloat64 : torch::kFloat32;
  rs.seed = setup.ensemble ? member_seed(setup.train.seed, run.member) : setup.train.seed;
  rs.shard = {run.layout.data->rank(), run.layout.data->size()};
  rs.world_size = run.world->size();
  rs.rank = run.world->rank();
  rs.data_comm = run.layout.data;
  try {
    run.problem = problem_entry.make(options, rs);
  } catch (const std::bad_alloc&) {
    throw InvalidArgument("the problem '" + setup.problem + "' does not fit in memory (" +
                          human_bytes(physical_memory_bytes()) + "); use fewer points or a smaller network");
  } catch (const c10::Error& e) {
    // LibTorch's allocator: "... you tried to allocate N bytes ..." (and a backtrace).
    const std::string what = e.what();
    const size_t at = what.find("tried to allocate ");
    if (at == std::string::npos) throw;
    const double bytes = std::atof(what.c_str() + at + 18);
    throw InvalidArgument("setting up the problem '" + setup.problem + "' asks for " +
                          std::to_string(static_cast<long long>(bytes)) + " bytes (" + human_bytes(bytes) +
                          ") in one allocation, and this machine has " + human_bytes(physical_memory_bytes()) +
                          " of memory; use fewer points (--nf, --n0, --nb) or a smaller network");
  }
  run.solver = make_solver(setup);
  if (const WarmupSpec warmup = parse_warmup(vm["warmup"].as<std::string>()); warmup.steps > 0) {
    const double lr = vm["warmup-lr"].as<double>();
    SolverPtr first;
    if (warmup.solver == "adam") {
      AdamOptions o;
      o.learning_rate = lr;
      first = std::make_unique<Adam>(o);
    } else {
      SgdOptions o;
      o.learning_rate = lr;
      first = std::make_unique<Sgd>(o);
    }
    run.solver = std::make_unique<WarmupChain>(std::move(first), warmup.steps, std::move(run.solver));
  }

  run.resolved = setup.resolved;
  if (run.problem->full_batch()) {
    DDTRAIN_CHECK(!vm.count("batch-size"), InvalidArgument, "--batch-size does not apply to the full-batch problem '",
                  setup.problem, "'");
  } else {
    run.resolved["batch-size"] = {std::to_string(run.train.batch_size), std::to_string(TrainOptions{}.batch_size),
                                  vm.count("batch-size") > 0};
  }
  const bool parameter_subdomains = run.solver->needs_partition();
  const bool data_subdomains = run.solver->needs_data_subdomains();
  DDTRAIN_CHECK(parameter_subdomains || !(vm.count("partition") || vm["overlap"].as<int>() != 0),
                InvalidArgument, "--partition/--overlap apply only to parameter-subdomain solvers (plbfgs, apts), not '",
                setup.solver, "'");
  DDTRAIN_CHECK(parameter_subdomains || data_subdomains || !vm.count("subdomains"), InvalidArgument,
                "--subdomains does not apply to solver '", setup.solver, "'");
  std::ostringstream describe;
  describe << device.str() << ", " << vm["precision"].as<std::string>();
  if (parameter_subdomains) {
    const auto& layers = run.problem->parameters().layers();
    const int overlap = vm["overlap"].as<int>();
    if (vm.count("partition")) {
      DDTRAIN_CHECK(!vm.count("subdomains"), InvalidArgument, "give either --subdomains or --partition, not both");
      run.partition = Partition::from_spec(layers, vm["partition"].as<std::string>(), overlap);
    } else {
      const int count = vm.count("subdomains")
                            ? vm["subdomains"].as<int>()
                            : std::max(run.layout.groups, std::min(3, static_cast<int>(layers.size())));
      run.partition = Partition::layerwise(layers, count, overlap);
    }
    DDTRAIN_CHECK(run.layout.groups <= run.partition->size(), InvalidArgument, "more rank groups (",
                  run.layout.groups, ") than subdomains (", run.partition->size(),
                  "): use at most as many ranks as subdomains, or --data-parallel D");
    describe << ", " << run.partition->describe();
  }
  if (data_subdomains) {
    TrainOptions& t = run.train;
    if (vm.count("subdomains")) t.data_subdomains = vm["subdomains"].as<int>();
    DDTRAIN_CHECK(t.data_subdomains == 0 || t.data_subdomains >= run.layout.data->size(), InvalidArgument,
                  "--subdomains ", t.data_subdomains, " is smaller than the number of ranks (",
                  run.layout.data->size(), "): every rank needs a micro-batch");
  }
  run.describe = describe.str();
  return run;
}

nlohmann::json run_summary_json(const TrainSetup& setup, const Run& run, const Summary& summary) {
  nlohmann::json j = summary_json(summary);
  j["problem"] = setup.problem;
  j["solver"] = setup.solver;
  const auto config = run_config(setup, run);
  if (config.count("variant")) j["variant"] = config.at("variant");
  j["ranks"] = run.world ? run.world->size() : 1;
  j["groups"] = run.layout.groups;
  j["data_parallel"] = run.layout.data ? run.layout.data->size() : 1;
  j["ensemble"] = setup.ensemble;
  j["precision"] = setup.vm["precision"].as<std::string>();
  j["device"] = run.run_setup.device.str();
  j["seed"] = setup.train.seed;
  if (run.member >= 0) {
    j["member"] = run.member;
    j["member_seed"] = run.run_setup.seed;
    j["member_options"] = member_parameters(setup, run.member);
  }
  if (run.partition) j["partition"] = run.partition->describe();
  if (run.solver)
    for (const auto& [name, count] : run.solver->counters()) j["solver_counters"][name] = count;
  j["environment"] = environment_json();
  // The full resolved configuration (as in config.ini), so summary.json alone reproduces the run.
  j["config"] = config;
  return j;
}

}  // namespace ddtrain::cli
