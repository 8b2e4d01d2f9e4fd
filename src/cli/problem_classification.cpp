// CLI registration of the classification problems "mnist", "fashion_mnist" and "cifar10".
#include "ddtrain/error.hpp"
#include "ddtrain/problems/classification.hpp"
#include "registry.hpp"

namespace ddtrain::cli {
namespace {

void add_classification_options(po::options_description& options) {
  add_option_once(options, "data", po::value<std::string>(),
                  "data directory: MNIST / Fashion-MNIST IDX files (plain or .gz) or CIFAR-10 "
                  "binary batches (fashion_mnist default: /usr/share/datasets/fashion-mnist)");
  // Shared with the PINN problems, so no default here: each problem applies its own.
  add_option_once(options, "model", po::value<std::string>(),
                  "network: resnet|fc (PINNs), ffnn|cnn (classification; default ffnn)");
  add_option_once(options, "hidden", po::value<int64_t>()->default_value(128),
                  "classification: hidden width of the FFNN / of the CNN's fully connected layers");
  add_option_once(options, "batch-norm", po::bool_switch(),
                  "classification: batch normalization with statistics synchronized across the "
                  "data-parallel ranks");
  add_option_once(options, "train-subset", po::value<int64_t>()->default_value(0),
                  "classification: use only the first K training samples (0 = all)");
  add_option_once(options, "test-subset", po::value<int64_t>()->default_value(0),
                  "classification: use only the first K test samples (0 = all)");
}

ProblemPtr make_classification(const std::string& dataset, const po::variables_map& vm,
                               const RunSetup& setup) {
  ClassificationOptions options;
  options.dataset = dataset;
  if (vm.count("data")) options.data_dir = vm["data"].as<std::string>();
  // A default set by another registrant of --model (a PINN network) is not a choice for us.
  if (vm.count("model") && !vm["model"].defaulted()) options.model = vm["model"].as<std::string>();
  if (vm.count("hidden")) options.hidden = vm["hidden"].as<int64_t>();
  if (vm.count("batch-norm")) options.batch_norm = vm["batch-norm"].as<bool>();
  if (vm.count("train-subset")) options.train_subset = vm["train-subset"].as<int64_t>();
  if (vm.count("test-subset")) options.test_subset = vm["test-subset"].as<int64_t>();
  options.dtype = setup.dtype;
  options.device = setup.device;
  options.seed = setup.seed;
  options.comm = setup.data_comm;
  // Unsynchronized statistics on several ranks would silently change the method.
  DDTRAIN_CHECK(!options.batch_norm || setup.world_size == 1 || setup.data_comm, InvalidArgument,
                "--batch-norm on ", setup.world_size,
                " ranks needs the data-parallel communicator (RunSetup::data_comm)");
  const std::string invalid = options.validate();
  DDTRAIN_CHECK(invalid.empty(), InvalidArgument, invalid);
  return std::make_unique<ClassificationProblem>(std::move(options));
}

ProblemEntry classification_entry(const std::string& dataset, const std::string& summary) {
  return {dataset, summary, add_classification_options,
          [dataset](const po::variables_map& vm, const RunSetup& setup) {
            return make_classification(dataset, vm, setup);
          }};
}

}  // namespace

DDTRAIN_REGISTER_PROBLEM(classification_entry(
    "mnist", "MNIST handwritten digits (--data DIR with the IDX files), --model ffnn|cnn"));
DDTRAIN_REGISTER_PROBLEM(classification_entry(
    "fashion_mnist", "Fashion-MNIST (default /usr/share/datasets/fashion-mnist), --model ffnn|cnn"));
DDTRAIN_REGISTER_PROBLEM(classification_entry(
    "cifar10", "CIFAR-10 (--data DIR with the binary batches), --model ffnn|cnn"));

}  // namespace ddtrain::cli
