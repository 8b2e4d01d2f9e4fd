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
  LocalResult result;
  for (const DataSubdomain& subdomain : context.data_subdomains) {
    DDTRAIN_CHECK(subdomain.objective != nullptr, InvalidArgument, "data subdomain ",
                  subdomain.index, " has no objective");
    FirstOrderConsistentObjective local(*subdomain.objective, x, gradient);
    ++summary.local_gradient_evaluations;
    torch::Tensor y = x.clone();
    result.predicted +=
        local_solve(local, y, local.value_at_center(), gradient.clone(), budget, summary);
    correction.add_(y).sub_(x);
    ++result.subdomains;
  }
  return result;
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
    SubdomainObjective local(*context.objective, partition[s].ranges, x);
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
