#include "registry.hpp"

#include <cmath>

#include "ddtrain/error.hpp"

namespace ddtrain::cli {

void add_option_once(po::options_description& options, const char* name,
                     const po::value_semantic* semantic, const char* help) {
  std::string long_name = name;
  long_name = long_name.substr(0, long_name.find(','));
  if (options.find_nothrow(long_name, false) != nullptr) {
    delete semantic;
    return;
  }
  options.add_options()(name, semantic, help);
}

void add_dense_memory_limit_option(po::options_description& options) {
  // No Boost default: a plbfgs run without dense memories must not record it in config.ini.
  add_option_once(options, "dense-memory-limit", po::value<double>(),
                  "bfgs, plbfgs with dense memories: MB the dense inverse Hessians of one rank may "
                  "use together (d^2 values each); more is refused (default 0: a quarter of the "
                  "physical memory)");
}

int64_t read_dense_memory_limit(OptionReader& options, int64_t default_bytes) {
  const double megabytes = options.real("dense-memory-limit", static_cast<double>(default_bytes) / 1e6);
  DDTRAIN_CHECK(megabytes >= 0 && std::isfinite(megabytes), InvalidArgument, "--dense-memory-limit must be >= 0 MB");
  return static_cast<int64_t>(megabytes * 1e6);
}

std::map<std::string, SolverEntry>& solver_registry() {
  static std::map<std::string, SolverEntry> registry;
  return registry;
}

std::map<std::string, ProblemEntry>& problem_registry() {
  static std::map<std::string, ProblemEntry> registry;
  return registry;
}

SolverRegistrar::SolverRegistrar(SolverEntry entry) {
  std::string name = entry.name;
  solver_registry().emplace(name, std::move(entry));
}

ProblemRegistrar::ProblemRegistrar(ProblemEntry entry) {
  std::string name = entry.name;
  problem_registry().emplace(name, std::move(entry));
}

namespace {
template <typename Map>
std::string names(const Map& map) {
  std::string out;
  for (const auto& [name, entry] : map) out += (out.empty() ? "" : ", ") + name;
  return out;
}
}  // namespace

std::string solver_names() { return names(solver_registry()); }
std::string problem_names() { return names(problem_registry()); }

}  // namespace ddtrain::cli
