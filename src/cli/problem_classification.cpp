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

ClassificationOptions classification_options(const std::string& dataset, OptionReader& in) {
  ClassificationOptions o;
  o.dataset = dataset;
  o.data_dir = in.text("data", o.data_dir);
  o.model = in.text("model", o.model);
  o.hidden = in.integer("hidden", o.hidden);
  o.batch_norm = in.flag("batch-norm", o.batch_norm);
  o.train_subset = in.integer("train-subset", o.train_subset);
  o.test_subset = in.integer("test-subset", o.test_subset);
  return o;
}

ProblemPtr make_classification(ClassificationOptions options, const RunSetup& setup) {
  options.dtype = setup.dtype;
  options.device = setup.device;
  options.seed = setup.seed;
  options.comm = setup.data_comm;
  // Unsynchronized statistics on several ranks would silently change the method.
  DDTRAIN_CHECK(!options.batch_norm || setup.world_size == 1 || setup.data_comm, InvalidArgument,
                "--batch-norm on ", setup.world_size,
                " ranks needs the data-parallel communicator (RunSetup::data_comm)");
  require_valid(options.validate());
  return std::make_unique<ClassificationProblem>(std::move(options));
}

ProblemEntry classification_entry(const std::string& dataset, const std::string& summary) {
  return problem_entry(
      dataset, summary, add_classification_options,
      [dataset](OptionReader& in) { return classification_options(dataset, in); }, make_classification);
}

}  // namespace

DDTRAIN_REGISTER_PROBLEM(classification_entry(
    "mnist", "MNIST handwritten digits (--data DIR with the IDX files), --model ffnn|cnn"));
DDTRAIN_REGISTER_PROBLEM(classification_entry(
    "fashion_mnist", "Fashion-MNIST (default /usr/share/datasets/fashion-mnist), --model ffnn|cnn"));
DDTRAIN_REGISTER_PROBLEM(classification_entry(
    "cifar10", "CIFAR-10 (--data DIR with the binary batches), --model ffnn|cnn"));

}  // namespace ddtrain::cli
