// `ddtrain reference allen_cahn --out FILE.mat`: the spectral (Fourier + ETDRK4) reference.
#include <chrono>
#include <iostream>

#include "commands.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/reference/allen_cahn_reference.hpp"
#include "ddtrain/reference/mat_file.hpp"
#include "registry.hpp"

namespace ddtrain::cli {

int run_reference(const std::vector<std::string>& args) {
  reference::AllenCahnReferenceOptions o;
  po::options_description d("Usage: ddtrain reference allen_cahn --out FILE.mat [options]");
  d.add_options()("help,h", "print this help")(
      "problem", po::value<std::string>()->default_value("allen_cahn"), "only allen_cahn")(
      "out", po::value<std::string>(), "output .mat file (x 512x1, tt 1x201, uu 512x201)")(
      "nx", po::value<int>(&o.nx)->default_value(o.nx), "Fourier points on [-1, 1)")(
      "nt", po::value<int>(&o.nt_out)->default_value(o.nt_out), "output times in [0, t_end]")(
      "dt", po::value<double>(&o.dt)->default_value(o.dt), "largest time step")(
      "diffusion", po::value<double>(&o.diffusion)->default_value(o.diffusion), "nu in u_t - nu u_xx + 5u^3 - 5u = 0");
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
  DDTRAIN_CHECK(vm["problem"].as<std::string>() == "allen_cahn", InvalidArgument,
                "unknown reference problem '", vm["problem"].as<std::string>(), "' (accepted: allen_cahn)");
  DDTRAIN_CHECK(vm.count("out"), InvalidArgument, "ddtrain reference needs --out FILE.mat");
  const auto t0 = std::chrono::steady_clock::now();
  const reference::ReferenceField field = reference::solve_allen_cahn(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  reference::write_reference_mat(vm["out"].as<std::string>(), field);
  std::cout << "allen_cahn reference " << o.nx << " x " << o.nt_out << " (dt "
            << reference::effective_time_step(o) << ") solved in " << seconds << " s, written to "
            << vm["out"].as<std::string>() << "\n";
  return kExitOk;
}

}  // namespace ddtrain::cli
