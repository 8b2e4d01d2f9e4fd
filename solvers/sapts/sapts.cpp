// SAPTS (data subdomains, ALGORITHMS.md §3.2 step 2) and APTS in weights (parameter
// subdomains, §3.3): the local corrections of the subdomains this rank owns.
#include <cmath>

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/sapts.hpp"

namespace ddtrain {

AdditiveTrustRegion::LocalResult Sapts::local_corrections(StepContext& context,
                                                          const torch::Tensor& x, double loss,
                                                          const torch::Tensor& gradient,
                                                          double radius, torch::Tensor& correction,
                                                          StepSummary& summary) {
  (void)loss;
  DDTRAIN_CHECK(context.num_data_subdomains >= 1, InvalidArgument,
                "sapts needs at least one data subdomain");
  const double budget = radius / context.num_data_subdomains;
  // Step 1 evaluated the owned micro-batches at x already (unless the cache supplied it).
  const bool started = starts_.size() == context.data_subdomains.size() &&
                       starts_batch_ == context.batch_id && starts_x_.defined() &&
                       torch::equal(starts_x_, x);
  LocalResult result;
  for (size_t k = 0; k < context.data_subdomains.size(); ++k) {
    const DataSubdomain& subdomain = context.data_subdomains[k];
    DDTRAIN_CHECK(subdomain.objective != nullptr, InvalidArgument, "data subdomain ",
                  subdomain.index, " has no objective");
    FirstOrderConsistentObjective local =
        started ? FirstOrderConsistentObjective(*subdomain.objective, x, gradient,
                                                starts_[k].loss, starts_[k].gradient)
                : FirstOrderConsistentObjective(*subdomain.objective, x, gradient);
    if (!started) ++summary.local_gradient_evaluations;
    torch::Tensor y = x.clone();
    result.predicted +=
        local_solve(local, y, local.value_at_center(), gradient.clone(), budget, summary);
    correction.add_(y).sub_(x);
    ++result.subdomains;
  }
  starts_.clear();
  return result;
}

double Sapts::evaluate_global(StepContext& context, const torch::Tensor& x,
                              torch::Tensor& gradient) {
  starts_.clear();
  if (!context.data_subdomains_add_up)
    return AdditiveTrustRegion::evaluate_global(context, x, gradient);
  // [sum_i w_i grad f_i, sum_i w_i f_i] over the owned micro-batches, then ONE allreduce: the
  // same fused exchange as the data-parallel objective, with each sample evaluated once.
  const int64_t d = x.numel();
  torch::Tensor buffer = torch::zeros({d + 1}, x.options());
  torch::Tensor sum = buffer.narrow(0, 0, d);
  double loss = 0;
  for (const DataSubdomain& subdomain : context.data_subdomains) {
    DDTRAIN_CHECK(subdomain.objective != nullptr, InvalidArgument, "data subdomain ",
                  subdomain.index, " has no objective");
    torch::Tensor g = torch::empty_like(x);
    const double value = subdomain.objective->evaluate(x, &g);
    sum.add_(g, subdomain.weight);
    loss += subdomain.weight * value;
    starts_.push_back({value, std::move(g)});
  }
  buffer.narrow(0, d, 1).fill_(loss);
  if (context.data_comm) context.data_comm->allreduce_sum(buffer);
  starts_x_ = x.clone();
  starts_batch_ = context.batch_id;
  gradient.copy_(sum);
  return buffer[d].item<double>();
}

void Sapts::reset() {
  AdditiveTrustRegion::reset();
  starts_.clear();
}

void Sapts::load_state(torch::serialize::InputArchive& archive) {
  AdditiveTrustRegion::load_state(archive);
  starts_.clear();
}

AdditiveTrustRegion::LocalResult Apts::local_corrections(StepContext& context,
                                                         const torch::Tensor& x, double loss,
                                                         const torch::Tensor& gradient,
                                                         double radius, torch::Tensor& correction,
                                                         StepSummary& summary) {
  const int count = total_subdomains(context);  // checks the partition
  const Partition& partition = *context.partition;
  DDTRAIN_CHECK(partition.dimension() == x.numel(), InvalidArgument, "apts: the partition covers ",
                partition.dimension(), " parameters, the model has ", x.numel());
  const double budget = radius / std::sqrt(static_cast<double>(count));
  LocalResult result;
  for (int s = 0; s < partition.size(); ++s) {
    if (!context.owns_subdomain(s)) continue;
    SubdomainObjective local(context.subdomain_objective(), partition[s].ranges, x);
    torch::Tensor y = local.restrict_vector(x);
    result.predicted +=
        local_solve(local, y, loss, local.restrict_vector(gradient), budget, summary);
    // Disjoint blocks: the sum of the corrections is their concatenation.
    local.scatter_into(correction, y - local.restrict_vector(x));
    ++result.subdomains;
  }
  return result;
}

int Apts::total_subdomains(const StepContext& context) const {
  DDTRAIN_CHECK(context.partition != nullptr, InvalidArgument, "apts needs a parameter partition");
  DDTRAIN_CHECK(context.partition->disjoint(), InvalidArgument,
                "apts needs subdomains without overlap (--overlap 0)");
  return context.partition->size();
}

}  // namespace ddtrain
