// ddtrain._core: the C++ half of the Python package `ddtrain` (python/ddtrain/ is the other).
//
// A Python optimizer owns one Engine: the model's parameters re-pointed into one flat vector
// (ddtrain::FlatParameters over a mirror of the Python module's parameter names, so the Python
// tensors become views of the flat vector and no copy is made per evaluation), the user's
// closure wrapped as an Objective, the data-parallel objective over a Communicator (one fused
// allreduce per evaluation; a failure on any rank is made collective, so no rank is left waiting)
// and a ddtrain Solver. Options come from the Python wrappers as a dict of checked keywords.
#include <torch/extension.h>
#include <pybind11/stl.h>

#include <cmath>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ddtrain/ddtrain.hpp"

namespace py = pybind11;

namespace ddtrain::python {
namespace {

// ---- exceptions -------------------------------------------------------------------------------

/// The Python classes of the ddtrain.Error hierarchy (defined in ddtrain/__init__.py, handed
/// over once by _set_exception_classes). Leaked on purpose: they must outlive the interpreter's
/// teardown of this module.
struct ExceptionClasses {
  PyObject* error = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* io_error = nullptr;
  PyObject* comm_error = nullptr;
  PyObject* numerical_error = nullptr;
};
ExceptionClasses& exception_classes() {
  static ExceptionClasses classes;
  return classes;
}

std::string flag_keywords(const std::string& message);

/// The keyword of an options-struct field that a validate() message names: the field itself,
/// but for the learning rates and the fields of nested structs (line_search.c1 is c1,
/// local.eta1 is local_eta1, local_line_search.max_evaluations is local_line_search_evaluations).
std::string keyword_of(const std::string& field) {
  if (field == "learning_rate") return "lr";
  if (field == "dense_memory_limit_bytes") return "memory_limit_bytes";  // PLBFGS, as BFGS
  if (field == "local_learning_rate") return "local_lr";
  const size_t dot = field.find('.');
  if (dot == std::string::npos) return field;
  const std::string path = field.substr(0, dot), rest = field.substr(dot + 1);
  const std::string prefix = path == "local" || path == "local_line_search" ? "local_" : "";
  if (path == "line_search" || path == "local_line_search") {
    if (rest == "type") return prefix + "line_search";
    if (rest == "max_evaluations") return prefix + "line_search_evaluations";
  }
  return prefix + rest;
}

/// Library messages name options-struct fields ("learning_rate must be > 0", see keyword_of) or,
/// outside validate(), CLI options ("--tr-memory must be >= 1"); in Python both are keywords.
std::string python_message(const std::string& text) {
  static const std::regex field("\\b[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)?\\b");
  std::string message;
  size_t done = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), field); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const bool option = m.position() > 0 && text[m.position() - 1] == '-';  // "--tr-memory": below
    message += text.substr(done, m.position() - done);
    message += option ? m.str() : keyword_of(m.str());
    done = m.position() + m.length();
  }
  message += text.substr(done);
  return flag_keywords(message);
}

/// Messages that name CLI options ("--history must be >= 1") with the Python keywords instead.
std::string flag_keywords(const std::string& message) {
  static const std::map<std::string, std::string> renamed = {
      {"lr", "lr"}, {"local-lr", "local_lr"}, {"loss-tolerance", "loss_change_tolerance"},
      {"dense-memory-limit", "memory_limit_bytes"}, {"tr-model", "model"}, {"tr-memory", "memory"},
      {"radius-increase", "increase"}, {"radius-decrease", "decrease"}};
  static const std::regex option("--([a-z][a-z0-9-]*)");
  std::string out;
  auto begin = std::sregex_iterator(message.begin(), message.end(), option);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    out += message.substr(last, m.position() - last);
    const std::string name = m[1].str();
    auto found = renamed.find(name);
    std::string keyword = found != renamed.end() ? found->second : name;
    for (char& c : keyword)
      if (c == '-') c = '_';
    out += keyword;
    last = m.position() + m.length();
  }
  out += message.substr(last);
  return out;
}

void translate_exceptions(std::exception_ptr p) {
  const ExceptionClasses& c = exception_classes();
  try {
    if (p) std::rethrow_exception(p);
  } catch (const InvalidArgument& e) {
    PyErr_SetString(c.invalid_argument ? c.invalid_argument : PyExc_ValueError, python_message(e.what()).c_str());
  } catch (const IoError& e) {
    PyErr_SetString(c.io_error ? c.io_error : PyExc_OSError, e.what());
  } catch (const CommError& e) {
    PyErr_SetString(c.comm_error ? c.comm_error : PyExc_RuntimeError, e.what());
  } catch (const NumericalError& e) {
    PyErr_SetString(c.numerical_error ? c.numerical_error : PyExc_ArithmeticError, e.what());
  } catch (const Error& e) {
    PyErr_SetString(c.error ? c.error : PyExc_RuntimeError, e.what());
  }
}

// ---- options ----------------------------------------------------------------------------------

/// Reads keyword options from a dict; every key must be read (no option is silently ignored).
class Options {
 public:
  explicit Options(py::dict d) : d_(std::move(d)) {}
  template <typename T>
  void read(const char* key, T& field) {
    if (!d_.contains(key)) return;
    used_.insert(key);
    py::object value = d_[key];
    if (value.is_none()) return;  // None: the default
    try {
      field = value.cast<T>();
    } catch (const py::cast_error&) {
      throw InvalidArgument(detail::concat("option '", key, "' has the wrong type (",
                                           py::str(py::type::of(value).attr("__name__")).cast<std::string>(), ")"));
    }
  }
  /// A named choice ("ssbroyden2", "multiplicative"): `parse(text)` into `field` when set.
  template <typename T, typename Parse>
  void read_choice(const char* key, T& field, Parse parse) {
    std::string text;
    read(key, text);
    if (!text.empty()) field = parse(text);
  }
  /// Set, and not None (None is the default).
  bool given(const std::string& key) const { return d_.contains(key) && !d_[key.c_str()].is_none(); }
  void finish(const std::string& solver) const {
    for (auto item : d_) {
      const std::string key = py::str(item.first);
      DDTRAIN_CHECK(used_.count(key) != 0, InvalidArgument, "option '", key, "' does not apply to ", solver);
    }
  }

 private:
  py::dict d_;
  std::set<std::string> used_;
};

void read_line_search(Options& o, LineSearchOptions& ls, const std::string& prefix) {
  o.read_choice((prefix + "line_search").c_str(), ls.type, parse_line_search);
  o.read((prefix + "c1").c_str(), ls.c1);
  o.read((prefix + "c2").c_str(), ls.c2);
  o.read((prefix + "line_search_evaluations").c_str(), ls.max_evaluations);
  o.read((prefix + "tolerance_change").c_str(), ls.tolerance_change);
}

void read_trust_region(Options& o, TrustRegionOptions& tr, const std::string& prefix) {
  o.read((prefix + "radius").c_str(), tr.radius);
  o.read((prefix + "min_radius").c_str(), tr.min_radius);
  o.read((prefix + "max_radius").c_str(), tr.max_radius);
  o.read((prefix + "eta1").c_str(), tr.eta1);
  o.read((prefix + "eta2").c_str(), tr.eta2);
  o.read((prefix + "increase").c_str(), tr.increase);
  o.read((prefix + "decrease").c_str(), tr.decrease);
}

std::unique_ptr<Solver> make_solver(const std::string& name, py::dict dict) {
  Options o(std::move(dict));
  std::unique_ptr<Solver> solver;
  if (name == "lbfgs") {
    LbfgsOptions options;
    o.read("history", options.history);
    o.read("lr", options.learning_rate);
    o.read("gradient_tolerance", options.gradient_tolerance);
    o.read("step_tolerance", options.step_tolerance);
    o.read("loss_change_tolerance", options.loss_change_tolerance);
    read_line_search(o, options.line_search, "");
    o.finish("LBFGS");
    solver = std::make_unique<Lbfgs>(options);
  } else if (name == "bfgs") {
    BfgsOptions options;
    o.read_choice("update", options.update, [](const std::string& n) { return parse_dense_update(n); });
    o.read("gradient_tolerance", options.gradient_tolerance);
    o.read("step_tolerance", options.step_tolerance);
    o.read("curvature_epsilon", options.curvature_epsilon);
    o.read("memory_limit_bytes", options.memory_limit_bytes);
    read_line_search(o, options.line_search, "");
    o.finish("BFGS");
    solver = std::make_unique<Bfgs>(options);
  } else if (name == "plbfgs") {
    PlbfgsOptions options;
    o.read_choice("variant", options.variant, parse_plbfgs_variant);
    o.read_choice("local_solver", options.local_solver, parse_local_solver);
    o.read_choice("global_solver", options.global_solver, parse_global_solver);
    // The CLI's list of options that do not apply, under their keywords.
    check_plbfgs_options_apply(options, [&o](const std::string& name) { return o.given(flag_keywords("--" + name)); });
    o.read_choice("local_update", options.local_update,
                  [](const std::string& n) { return parse_dense_update(n, "--local-update"); });
    o.read_choice("global_update", options.global_update,
                  [](const std::string& n) { return parse_dense_update(n, "--global-update"); });
    o.read_choice("accumulate", options.nonblocking_accumulate, parse_accumulate);
    o.read("memory_limit_bytes", options.dense_memory_limit_bytes);
    o.read_choice("combination", options.combination, parse_combination);
    o.read_choice("secant_pair", options.secant_pair, parse_secant_pair);
    o.read_choice("local_memory", options.reset_local_memory, parse_local_memory_reset);
    o.read("local_steps", options.local_steps);
    o.read("local_history", options.local_history);
    o.read("local_lr", options.local_learning_rate);
    o.read("history", options.history);
    o.read("weight_iterations", options.weight_iterations);
    o.read("gradient_tolerance", options.gradient_tolerance);
    read_line_search(o, options.line_search, "");
    read_line_search(o, options.local_line_search, "local_");
    o.finish("PLBFGS");
    solver = std::make_unique<Plbfgs>(options);
  } else if (name == "sapts") {
    SaptsOptions options;
    o.read("local_steps", options.local_steps);
    o.read("global_steps", options.global_steps);
    o.read("gradient_tolerance", options.gradient_tolerance);
    read_trust_region(o, options.global, "");
    read_trust_region(o, options.local, "local_");
    o.finish("SAPTS");
    solver = std::make_unique<Sapts>(options);
  } else {
    throw InvalidArgument("unknown solver '" + name + "'");
  }
  return solver;
}

// ---- parameters -------------------------------------------------------------------------------

std::vector<std::string> split_name(const std::string& name) {
  std::vector<std::string> parts;
  std::stringstream in(name);
  std::string part;
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

/// A torch::nn::Module that holds the Python module's parameter tensors under their dotted names
/// (nested children), so that FlatParameters and Partition work on a Python model unchanged.
std::shared_ptr<torch::nn::Module> mirror_module(
    const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  auto root = std::make_shared<torch::nn::Module>();
  std::unordered_set<const void*> seen;
  for (const auto& [name, tensor] : named) {
    DDTRAIN_CHECK(tensor.defined(), InvalidArgument, "parameter '", name, "' is not a tensor");
    DDTRAIN_CHECK(seen.insert(tensor.unsafeGetTensorImpl()).second, InvalidArgument, "parameter '", name,
                  "' is given twice (the same tensor)");
    DDTRAIN_CHECK(tensor.is_leaf(), InvalidArgument, "parameter '", name,
                  "' is not a leaf tensor (pass the model's parameters)");
    const std::vector<std::string> parts = split_name(name);
    DDTRAIN_CHECK(!parts.empty(), InvalidArgument, "empty parameter name");
    torch::nn::Module* module = root.get();
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto children = module->named_children();
      if (auto* child = children.find(parts[i])) {
        module = child->get();
      } else {
        module = module->register_module(parts[i], std::make_shared<torch::nn::Module>()).get();
      }
    }
    module->register_parameter(parts.back(), tensor, tensor.requires_grad());
  }
  return root;
}

// ---- objectives -------------------------------------------------------------------------------

/// The loss a closure returned, as a double: a tensor of one element or a Python number.
double closure_loss(const py::object& result) {
  if (THPVariable_Check(result.ptr())) {
    const torch::Tensor loss = THPVariable_Unpack(result.ptr());
    if (loss.numel() != 1) {
      std::ostringstream shape;
      shape << loss.sizes();
      throw InvalidArgument("the closure must return a scalar loss (a tensor of one element), got a tensor of shape " +
                            shape.str());
    }
    DDTRAIN_CHECK(!loss.is_complex(), InvalidArgument, "the closure returned a complex loss");
    return loss.detach().to(torch::kCPU, torch::kFloat64).item<double>();
  }
  if (PyFloat_Check(result.ptr()) || PyLong_Check(result.ptr())) return result.cast<double>();
  const std::string type = py::str(py::type::of(result).attr("__name__"));
  throw InvalidArgument("the closure must return the loss (a scalar tensor), got " +
                        (result.is_none() ? std::string("None") : "an object of type " + type));
}

/// This rank's loss: copies x into the module's flat parameters, calls the Python closure (which
/// calls backward(), as for torch.optim) and reads the flat gradient.
class ClosureObjective final : public Objective {
 public:
  explicit ClosureObjective(FlatParameters& parameters) : parameters_(parameters) {}
  int64_t dimension() const override { return parameters_.size(); }
  torch::Tensor initial_point() const override { return parameters_.values().clone(); }
  void set_active(const std::vector<Range>& active) override { parameters_.set_trainable(active); }
  void commit(const torch::Tensor& x) override {
    torch::NoGradGuard no_grad;
    if (x.data_ptr() != parameters_.values().data_ptr()) parameters_.values().copy_(x);
  }
  /// The callable evaluated (with `argument` when it is not None: SAPTS's micro-batch index).
  void set_closure(py::object closure, py::object argument = py::none()) {
    closure_ = std::move(closure);
    argument_ = std::move(argument);
  }
  void clear() { set_closure(py::none()); }

  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    DDTRAIN_CHECK(!closure_.is_none(), InvalidArgument, "no closure set (call step(closure))");
    commit(x);
    torch::AutoGradMode grad_mode(true);  // solvers run their algebra without autograd
    parameters_.zero_gradients();
    py::object result = argument_.is_none() ? closure_() : closure_(argument_);
    const double loss = closure_loss(result);
    if (gradient != nullptr) {
      parameters_.ensure_gradient_views();  // zero_grad(set_to_none=True) or replaced .grad
      torch::Tensor& flat = parameters_.gradients();
      if (gradient->data_ptr() != flat.data_ptr()) gradient->copy_(flat);
    }
    return loss;
  }

 private:
  FlatParameters& parameters_;
  py::object closure_ = py::none();
  py::object argument_ = py::none();
};

/// Sum of several weighted objectives (SAPTS: this rank's micro-batches, f = sum_i w_i f_i).
class WeightedSum final : public Objective {
 public:
  WeightedSum(std::vector<Objective*> terms, std::vector<double> weights, int64_t d, torch::Tensor start)
      : terms_(std::move(terms)), weights_(std::move(weights)), d_(d), start_(std::move(start)) {}
  int64_t dimension() const override { return d_; }
  torch::Tensor initial_point() const override { return start_.clone(); }
  void set_active(const std::vector<Range>& active) override {
    for (Objective* t : terms_) t->set_active(active);
  }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    double loss = 0;
    if (gradient != nullptr) gradient->zero_();
    torch::Tensor g;
    for (size_t i = 0; i < terms_.size(); ++i) {
      if (gradient != nullptr) {
        if (!g.defined()) g = torch::empty_like(*gradient);
        loss += weights_[i] * terms_[i]->evaluate(x, &g);
        gradient->add_(g, weights_[i]);
      } else {
        loss += weights_[i] * terms_[i]->loss(x);
      }
    }
    return loss;
  }

 private:
  std::vector<Objective*> terms_;
  std::vector<double> weights_;
  int64_t d_;
  torch::Tensor start_;
};

/// The data-parallel objective over `comm`: ONE fused allreduce of
/// [gradient*w, loss*w, w, failed, failed_rank] per evaluation. With `weight` = this rank's
/// shard size and the closure returning its shard's mean, the value is sum n_r L_r / sum n_r;
/// with no weight, losses are summed (each rank returns its share). An exception on any rank
/// (a closure that raised, returned a non-scalar, ...) is raised on every rank after the
/// allreduce: the failing rank raises its own, the others a CommError naming it.
class CollectiveObjective final : public Objective {
 public:
  CollectiveObjective(Objective& local, CommunicatorPtr comm, std::optional<double> weight)
      : local_(local), comm_(std::move(comm)), weight_(weight) {}
  int64_t dimension() const override { return local_.dimension(); }
  torch::Tensor initial_point() const override { return local_.initial_point(); }
  void set_active(const std::vector<Range>& active) override { local_.set_active(active); }
  void commit(const torch::Tensor& x) override { local_.commit(x); }
  void set_weight(std::optional<double> weight) { weight_ = weight; }
  std::optional<double> weight() const { return weight_; }

  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    if (comm_->size() == 1) return local_.evaluate(x, gradient);
    const int64_t d = gradient != nullptr ? local_.dimension() : 0;
    if (!buffer_.defined() || buffer_.numel() != d + 4 || buffer_.dtype() != x.dtype() ||
        buffer_.device() != x.device()) {
      buffer_ = torch::empty({d + 4}, x.options());
    }
    torch::Tensor g = buffer_.narrow(0, 0, d);
    std::exception_ptr failure;
    double loss = 0;
    try {
      loss = local_.evaluate(x, gradient != nullptr ? &g : nullptr);
    } catch (...) {
      failure = std::current_exception();
    }
    const double w = weight_.value_or(1.0);
    torch::NoGradGuard no_grad;
    if (failure) {
      g.zero_();
    } else if (weight_) {
      g.mul_(w);
    }
    buffer_.narrow(0, d, 4).copy_(torch::tensor(
        {failure ? 0.0 : loss * w, w, failure ? 1.0 : 0.0, failure ? static_cast<double>(comm_->rank()) : 0.0},
        torch::kFloat64));
    comm_->allreduce_sum(buffer_);
    torch::Tensor tail = buffer_.narrow(0, d, 4).to(torch::kCPU, torch::kFloat64);
    const auto* t = tail.data_ptr<double>();
    if (failure) std::rethrow_exception(failure);
    if (t[2] > 0) {
      const int failed = static_cast<int>(std::lround(t[2]));
      throw CommError(failed == 1
                          ? detail::concat("rank ", std::lround(t[3]),
                                           " failed while evaluating its closure (its exception is raised there)")
                          : detail::concat(failed, " ranks failed while evaluating their closures"));
    }
    const double total = weight_ ? t[1] : 1.0;
    if (gradient != nullptr) {
      if (weight_) g.div_(total);
      gradient->copy_(g);
    }
    return t[0] / total;
  }

 private:
  Objective& local_;
  CommunicatorPtr comm_;
  std::optional<double> weight_;
  torch::Tensor buffer_;
};

// ---- the engine behind a Python optimizer -----------------------------------------------------

py::dict summary_dict(const StepSummary& s) {
  py::dict d;
  d["loss"] = s.loss;
  d["gradient_norm"] = s.gradient_norm;
  d["step_length"] = s.step_length;
  d["radius"] = s.radius;
  d["accepted"] = s.accepted;
  d["gradient_evaluations"] = s.gradient_evaluations;
  d["local_gradient_evaluations"] = s.local_gradient_evaluations;
  d["loss_evaluations"] = s.loss_evaluations;
  d["termination"] = to_string(s.termination);
  d["message"] = s.message;
  return d;
}

class Engine {
 public:
  /// `groups`: parameter-name groups (PLBFGS), or empty; `subdomains`: layer-wise count
  /// (PLBFGS) or the number of micro-batches (SAPTS); `weight`: this rank's shard size.
  Engine(const std::string& solver, py::dict options,
         const std::vector<std::pair<std::string, torch::Tensor>>& parameters, CommunicatorPtr comm,
         const std::vector<std::vector<std::string>>& groups, int subdomains, int overlap,
         std::optional<double> weight, bool full_batch, const std::map<std::string, std::string>& layer_of)
      : name_(solver), comm_(comm ? std::move(comm) : std::make_shared<SelfComm>()),
        full_batch_(full_batch) {
    DDTRAIN_CHECK(!parameters.empty(), InvalidArgument, "the optimizer got an empty parameter list");
    DDTRAIN_CHECK(!weight || (std::isfinite(*weight) && *weight >= 0), InvalidArgument,
                  "shard_size must be a finite number >= 0");
    solver_ = make_solver(solver, std::move(options));
    module_ = mirror_module(parameters);
    LayerOf layers = top_level_layer;
    if (!layer_of.empty()) {
      layers = [layer_of](const std::string& name) {
        auto found = layer_of.find(name);
        return found != layer_of.end() ? found->second : top_level_layer(name);
      };
    }
    parameters_ = std::make_unique<FlatParameters>(*module_, layers);
    local_ = std::make_unique<ClosureObjective>(*parameters_);
    global_ = std::make_unique<CollectiveObjective>(*local_, comm_, weight);
    self_ = std::make_shared<SelfComm>();
    if (solver_->needs_partition()) {
      DDTRAIN_CHECK(subdomains >= 1 || !groups.empty(), InvalidArgument, "subdomains must be >= 1");
      if (!groups.empty()) {
        partition_ = std::make_unique<Partition>(Partition::from_parameter_names(*parameters_, groups));
      } else {
        DDTRAIN_CHECK(subdomains <= static_cast<int>(parameters_->layers().size()), InvalidArgument,
                      "subdomains = ", subdomains, " but the model has only ", parameters_->layers().size(),
                      " children that hold parameters (",
                      layer_names(), "); pass fewer subdomains or a partition of parameter names");
        partition_ = std::make_unique<Partition>(Partition::layerwise(parameters_->layers(), subdomains, overlap));
      }
    }
    if (solver_->needs_data_subdomains()) {
      DDTRAIN_CHECK(subdomains >= 1, InvalidArgument, "subdomains must be >= 1");
      DDTRAIN_CHECK(subdomains >= comm_->size(), InvalidArgument, "subdomains = ", subdomains,
                    " is smaller than the number of ranks (", comm_->size(),
                    "): every rank needs at least one micro-batch");
      num_micro_ = subdomains;
    }
    // The same start on every rank (as DDP): rank 0's parameters.
    if (comm_->size() > 1) comm_->broadcast(parameters_->values(), 0);
    x_ = parameters_->values().clone();
  }

  std::string layer_names() const {
    std::string names;
    for (const Layer& l : parameters_->layers()) names += (names.empty() ? "" : ", ") + l.name;
    return names;
  }

  py::dict step(py::object closure, std::optional<std::vector<double>> micro_weights) {
    struct Clear {
      Engine& e;
      ~Clear() {
        e.local_->clear();
        for (auto& m : e.micro_) m->clear();
      }
    } clear{*this};
    if (!full_batch_ || steps_ == 0) ++batch_id_;
    torch::NoGradGuard no_grad;
    x_.copy_(parameters_->values());  // the user may have changed the parameters between steps
    StepContext context;
    context.accumulate_comm = self_;
    context.data_comm = comm_;
    context.batch_id = batch_id_;
    context.partition = partition_.get();
    std::unique_ptr<Objective> sapts_local, sapts_global;
    if (num_micro_ > 0) {
      std::vector<double> weights = micro_weights ? *micro_weights : std::vector<double>(num_micro_, 1.0 / num_micro_);
      DDTRAIN_CHECK(static_cast<int>(weights.size()) == num_micro_, InvalidArgument, "weights has ",
                    weights.size(), " entries for ", num_micro_, " micro-batches");
      double sum = 0;
      for (double w : weights) {
        DDTRAIN_CHECK(std::isfinite(w) && w > 0, InvalidArgument, "micro-batch weights must be > 0");
        sum += w;
      }
      while (static_cast<int>(micro_.size()) < num_micro_) micro_.push_back(std::make_unique<ClosureObjective>(*parameters_));
      std::vector<Objective*> terms;
      std::vector<double> term_weights;
      for (int i = comm_->rank(); i < num_micro_; i += comm_->size()) {
        micro_[i]->set_closure(closure, py::int_(i));
        context.data_subdomains.push_back({i, micro_[i].get(), weights[i] / sum});
        terms.push_back(micro_[i].get());
        term_weights.push_back(weights[i] / sum);
      }
      context.num_data_subdomains = num_micro_;
      sapts_local = std::make_unique<WeightedSum>(terms, term_weights, parameters_->size(), x_);
      sapts_global = std::make_unique<CollectiveObjective>(*sapts_local, comm_, std::nullopt);
      context.objective = sapts_global.get();
    } else {
      local_->set_closure(closure);
      context.objective = global_.get();
    }
    StepSummary summary = solver_->step(context, x_);
    ++steps_;
    // x_ is the accepted iterate; the last trial point may differ.
    parameters_->values().copy_(x_);
    if (summary.termination == Termination::kNumericalFailure) {
      throw NumericalError(detail::concat("the loss or gradient is not finite at the current parameters (loss ",
                                          summary.loss, "): ", summary.message.empty() ? "numerical failure" : summary.message));
    }
    return summary_dict(summary);
  }

  py::bytes state() const {
    torch::serialize::OutputArchive archive;
    solver_->save_state(archive);
    archive.write("python.steps", torch::tensor({steps_, static_cast<int64_t>(batch_id_)}, torch::kInt64));
    std::ostringstream out;
    archive.save_to(out);
    return py::bytes(out.str());
  }

  void load_state(const std::string& bytes) {
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(bytes.data(), bytes.size());
    } catch (const c10::Error& e) {
      throw IoError(std::string("load_state_dict: the ddtrain state is not a readable archive: ") + e.what_without_backtrace());
    }
    try {
      solver_->load_state(archive);
      torch::Tensor steps;
      archive.read("python.steps", steps);
      steps_ = steps[0].item<int64_t>();
      batch_id_ = static_cast<uint64_t>(steps[1].item<int64_t>());
    } catch (const c10::Error& e) {
      throw IoError(std::string("load_state_dict: the state does not fit this optimizer: ") + e.what_without_backtrace());
    }
  }

  void reset() { solver_->reset(); }
  void zero_grad() { parameters_->zero_gradients(); }
  int64_t dimension() const { return parameters_->size(); }
  int64_t steps() const { return steps_; }
  std::string solver_name() const { return solver_->name(); }
  CommunicatorPtr comm() const { return comm_; }
  std::optional<double> shard_size() const { return global_->weight(); }
  void set_shard_size(std::optional<double> w) {
    DDTRAIN_CHECK(!w || (std::isfinite(*w) && *w >= 0), InvalidArgument, "shard_size must be a finite number >= 0");
    global_->set_weight(w);
  }
  std::vector<std::pair<std::string, int64_t>> counters() const {
    auto c = solver_->counters();
    c.emplace_back("gradient_evaluations", global_->counters().gradient);
    c.emplace_back("loss_evaluations", global_->counters().loss_only);
    return c;
  }
  std::string partition_description() const { return partition_ ? partition_->describe() : ""; }
  std::vector<std::vector<std::pair<int64_t, int64_t>>> partition_ranges() const {
    std::vector<std::vector<std::pair<int64_t, int64_t>>> out;
    if (!partition_) return out;
    for (const Subdomain& s : partition_->subdomains()) {
      out.emplace_back();
      for (const Range& r : s.ranges) out.back().emplace_back(r.begin, r.end);
    }
    return out;
  }
  std::vector<std::string> layers() const {
    std::vector<std::string> names;
    for (const Layer& l : parameters_->layers()) names.push_back(l.name);
    return names;
  }
  torch::Tensor flat_parameters() const { return parameters_->values(); }
  torch::Tensor flat_gradients() const { return parameters_->gradients(); }

 private:
  std::string name_;
  CommunicatorPtr comm_, self_;
  bool full_batch_;
  std::unique_ptr<Solver> solver_;
  std::shared_ptr<torch::nn::Module> module_;
  std::unique_ptr<FlatParameters> parameters_;
  std::unique_ptr<ClosureObjective> local_;
  std::unique_ptr<CollectiveObjective> global_;
  std::unique_ptr<Partition> partition_;
  std::vector<std::unique_ptr<ClosureObjective>> micro_;
  int num_micro_ = 0;
  torch::Tensor x_;
  int64_t steps_ = 0;
  uint64_t batch_id_ = 0;
};

}  // namespace
}  // namespace ddtrain::python

PYBIND11_MODULE(_core, m) {
  using namespace ddtrain;
  using namespace ddtrain::python;
  m.doc() = "ddtrain's C++ core (use the package `ddtrain`, not this module)";
  py::register_exception_translator(&translate_exceptions);

  m.def("_set_exception_classes", [](py::object error, py::object invalid, py::object io, py::object comm,
                                     py::object numerical) {
    ExceptionClasses& c = exception_classes();
    for (PyObject** slot : {&c.error, &c.invalid_argument, &c.io_error, &c.comm_error, &c.numerical_error})
      Py_XDECREF(*slot);
    c.error = error.release().ptr();
    c.invalid_argument = invalid.release().ptr();
    c.io_error = io.release().ptr();
    c.comm_error = comm.release().ptr();
    c.numerical_error = numerical.release().ptr();
  });

  py::class_<Communicator, std::shared_ptr<Communicator>>(m, "Communicator")
      .def_property_readonly("rank", &Communicator::rank, "this process's rank in [0, size)")
      .def_property_readonly("size", &Communicator::size, "number of processes")
      .def_property_readonly("backend", &Communicator::backend, "'self' or 'mpi'")
      .def("barrier", &Communicator::barrier, "waits for every rank")
      .def(
          "allreduce_sum",
          [](Communicator& c, torch::Tensor t) {
            DDTRAIN_CHECK(t.is_contiguous(), InvalidArgument, "allreduce_sum needs a contiguous tensor");
            torch::NoGradGuard no_grad;
            c.allreduce_sum(t);
            return t;
          },
          py::arg("tensor"), "in-place sum over all ranks of a contiguous float32/float64 tensor; returns it")
      .def(
          "broadcast",
          [](Communicator& c, torch::Tensor t, int root) {
            DDTRAIN_CHECK(t.is_contiguous(), InvalidArgument, "broadcast needs a contiguous tensor");
            DDTRAIN_CHECK(root >= 0 && root < c.size(), InvalidArgument, "root ", root, " is not a rank");
            torch::NoGradGuard no_grad;
            c.broadcast(t, root);
            return t;
          },
          py::arg("tensor"), py::arg("root") = 0, "in-place broadcast from `root`; returns the tensor")
      .def("abort", &Communicator::abort, py::arg("exit_code") = 1,
           "ends the whole job (every rank) after a fatal error")
      .def("__repr__", [](const Communicator& c) {
        return ddtrain::detail::concat("<ddtrain.Communicator backend='", c.backend(), "' rank=", c.rank(), " size=", c.size(), ">");
      });

  m.def(
      "make_communicator",
      [](const std::string& backend) { return make_communicator(parse_comm_backend(backend), torch::kCPU); },
      py::arg("backend") = "auto");
  m.def("launched_under_mpi", &launched_under_mpi);
  m.def("mpi_available", &mpi_available);
  m.def("abort_job", [](int code) { abort_job(code); });
  m.attr("__version__") = DDTRAIN_VERSION_STRING;

  py::class_<Engine>(m, "Engine")
      .def(py::init<const std::string&, py::dict, const std::vector<std::pair<std::string, torch::Tensor>>&,
                    CommunicatorPtr, const std::vector<std::vector<std::string>>&, int, int,
                    std::optional<double>, bool, const std::map<std::string, std::string>&>(),
           py::arg("solver"), py::arg("options"), py::arg("parameters"), py::arg("comm"), py::arg("groups"),
           py::arg("subdomains"), py::arg("overlap"), py::arg("weight"), py::arg("full_batch"),
           py::arg("layer_of") = std::map<std::string, std::string>())
      .def("step", &Engine::step, py::arg("closure"), py::arg("micro_weights") = py::none())
      .def("state", &Engine::state)
      .def("load_state", &Engine::load_state)
      .def("reset", &Engine::reset)
      .def("zero_grad", &Engine::zero_grad)
      .def_property_readonly("dimension", &Engine::dimension)
      .def_property_readonly("steps", &Engine::steps)
      .def_property_readonly("solver", &Engine::solver_name)
      .def_property_readonly("comm", &Engine::comm)
      .def_property("shard_size", &Engine::shard_size, &Engine::set_shard_size)
      .def("counters", &Engine::counters)
      .def_property_readonly("partition", &Engine::partition_description)
      .def("partition_ranges", &Engine::partition_ranges)
      .def_property_readonly("layers", &Engine::layers)
      .def_property_readonly("flat_parameters", &Engine::flat_parameters)
      .def_property_readonly("flat_gradients", &Engine::flat_gradients);
}
