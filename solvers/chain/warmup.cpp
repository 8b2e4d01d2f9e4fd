#include "ddtrain/solvers/warmup.hpp"

#include "ddtrain/error.hpp"

namespace ddtrain {

WarmupChain::WarmupChain(SolverPtr warmup, int64_t steps, SolverPtr then)
    : warmup_(std::move(warmup)), then_(std::move(then)), steps_(steps) {
  DDTRAIN_CHECK(warmup_ && then_, InvalidArgument, "a warm-up chain needs two solvers");
  DDTRAIN_CHECK(steps_ >= 1, InvalidArgument, "--warmup needs at least 1 step, got ", steps_);
  DDTRAIN_CHECK(warmup_->name() != then_->name(), InvalidArgument, "--warmup ", warmup_->name(),
                " before --solver ", then_->name(), ": the warm-up solver must differ from the main one");
  DDTRAIN_CHECK(!warmup_->needs_partition() && !warmup_->needs_data_subdomains(), InvalidArgument,
                "--warmup ", warmup_->name(), ": a warm-up solver must be a data-parallel one (adam, sgd, lbfgs)");
}

StepSummary WarmupChain::step(StepContext& context, torch::Tensor& x) {
  if (done_ < steps_) {
    ++done_;
    StepSummary summary = warmup_->step(context, x);
    // A warm-up that converges or stalls hands over to the main solver instead of ending the run.
    if (summary.termination == Termination::kConverged ||
        summary.termination == Termination::kLineSearchFailure) {
      summary.termination = Termination::kRunning;
      summary.message.clear();
      done_ = steps_;
    }
    return summary;
  }
  return then_->step(context, x);
}

void WarmupChain::reset() {
  warmup_->reset();
  then_->reset();
  done_ = 0;
}

void WarmupChain::save_state(torch::serialize::OutputArchive& archive) const {
  archive.write("warmup.done", torch::tensor({done_}, torch::kInt64));
  warmup_->save_state(archive);
  then_->save_state(archive);
}

void WarmupChain::load_state(torch::serialize::InputArchive& archive) {
  torch::Tensor done;
  archive.read("warmup.done", done);
  done_ = done.item<int64_t>();
  warmup_->load_state(archive);
  then_->load_state(archive);
}

int64_t WarmupChain::batch_size(int64_t configured, int64_t num_samples) {
  return done_ < steps_ ? warmup_->batch_size(configured, num_samples)
                        : then_->batch_size(configured, num_samples);
}

std::vector<std::pair<std::string, int64_t>> WarmupChain::counters() const {
  std::vector<std::pair<std::string, int64_t>> out = {{"warmup_steps", done_}};
  for (const auto& c : then_->counters()) out.push_back(c);
  return out;
}

}  // namespace ddtrain
