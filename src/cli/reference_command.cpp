// `ddtrain reference allen_cahn --out FILE.mat`: the spectral (Fourier + ETDRK4) Allen–Cahn
// reference; `ddtrain reference burgers --out FILE.mat`: the Cole–Hopf Burgers reference.
#include <chrono>
#include <iostream>

#include "commands.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/reference/allen_cahn_reference.hpp"
#include "ddtrain/reference/burgers_reference.hpp"
#include "ddtrain/reference/mat_file.hpp"
#include "registry.hpp"

namespace ddtrain::cli {

po::options_description reference_options() {
  po::options_description d("Usage: ddtrain reference allen_cahn|burgers --out FILE.mat [options]");
  d.add_options()("help,h", "print this help")(
      "problem", po::value<std::string>()->default_value("allen_cahn"), "allen_cahn | burgers")(
      "out", po::value<std::string>(), "output .mat file (x nx x 1, tt 1 x nt, uu nx x nt)")(
      "nx", po::value<int>(), "grid points in x (allen_cahn: 512 Fourier points on [-1, 1); burgers: 256 on [-1, 1])")(
      "nt", po::value<int>(), "output times in [0, 1], both ends (allen_cahn: 201; burgers: 101)")(
      "dt", po::value<double>(), "allen_cahn: largest time step (5e-4)")(
      "diffusion", po::value<double>(), "allen_cahn: nu in u_t - nu u_xx + 5u^3 - 5u = 0 (1e-4)")(
      "viscosity", po::value<double>(), "burgers: nu in u_t + u u_x = nu u_xx (0.01/pi)")(
      "quadrature-nodes", po::value<int>(), "burgers: Gauss-Hermite nodes of the Cole-Hopf integrals, 8..600 (200)");
  return d;
}

int run_reference(const std::vector<std::string>& args) {
  const po::options_description d = reference_options();
  po::positional_options_description positional;
  positional.add("problem", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw InvalidArgument(e.what());
  }
  if (vm.count("help")) {
    std::cout << d << "\n";
    return kExitOk;
  }
  const std::string problem = vm["problem"].as<std::string>();
  DDTRAIN_CHECK(problem == "allen_cahn" || problem == "burgers", InvalidArgument, "unknown reference problem '",
                problem, "' (accepted: allen_cahn, burgers)");
  for (const char* option : {"dt", "diffusion", "viscosity", "quadrature-nodes"}) {
    const bool for_burgers = std::string(option) == "viscosity" || std::string(option) == "quadrature-nodes";
    DDTRAIN_CHECK(!vm.count(option) || for_burgers == (problem == "burgers"), InvalidArgument, "--", option,
                  " applies to ddtrain reference ", for_burgers ? "burgers" : "allen_cahn", ", not ", problem);
  }
  DDTRAIN_CHECK(vm.count("out"), InvalidArgument, "ddtrain reference needs --out FILE.mat");
  const std::string out = vm["out"].as<std::string>();
  auto given = [&](const char* name, auto fallback) {
    return vm.count(name) ? vm[name].as<decltype(fallback)>() : fallback;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  if (problem == "burgers") {
    reference::BurgersReferenceOptions o;
    o.nx = given("nx", o.nx);
    o.nt = given("nt", o.nt);
    o.viscosity = given("viscosity", o.viscosity);
    o.quadrature_nodes = given("quadrature-nodes", o.quadrature_nodes);
    require_valid(o.validate());
    const reference::ReferenceField field = reference::solve_burgers(o);
    const double elapsed = seconds();
    reference::write_reference_mat(out, field);
    std::cout << "burgers reference " << o.nx << " x " << o.nt << " (Cole-Hopf, " << o.quadrature_nodes
              << " Gauss-Hermite nodes) computed in " << elapsed << " s, written to " << out << "\n";
    return kExitOk;
  }
  reference::AllenCahnReferenceOptions o;
  o.nx = given("nx", o.nx);
  o.nt_out = given("nt", o.nt_out);
  o.dt = given("dt", o.dt);
  o.diffusion = given("diffusion", o.diffusion);
  const reference::ReferenceField field = reference::solve_allen_cahn(o);
  const double elapsed = seconds();
  reference::write_reference_mat(out, field);
  std::cout << "allen_cahn reference " << o.nx << " x " << o.nt_out << " (dt " << reference::effective_time_step(o)
            << ") solved in " << elapsed << " s, written to " << out << "\n";
  return kExitOk;
}

}  // namespace ddtrain::cli
