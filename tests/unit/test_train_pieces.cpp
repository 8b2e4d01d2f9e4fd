// The pieces of train(): the batch schedule (order, tail, resume position), the stop criteria
// (precedence, agreement across ranks) and the last-finite-iterate rollback. Private headers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "../../src/train/batch_schedule.hpp"
#include "../../src/train/run_record.hpp"
#include "../../src/train/stop_criteria.hpp"
#include "ddtrain/error.hpp"

using namespace ddtrain;
using namespace ddtrain::driver;

namespace {

std::vector<Batch> epoch_batches(BatchSchedule& schedule, int64_t epoch, int64_t batch_size) {
  schedule.start_epoch(epoch, batch_size, false);
  std::vector<Batch> batches;
  while (std::optional<Batch> b = schedule.next()) batches.push_back(*b);
  return batches;
}

ScheduleOptions mini_batch(int64_t n, int micro_batches = 1) {
  return {false, n, 7, micro_batches};
}

/// A communicator of `size` ranks on which the other ranks' values add up to `others`.
class OtherRanksComm final : public Communicator {
 public:
  OtherRanksComm(int size, double others) : size_(size), others_(others) {}
  int rank() const override { return 0; }
  int size() const override { return size_; }
  std::string backend() const override { return "test"; }
  void allreduce_sum(torch::Tensor&) override {}
  double allreduce_sum(double value) override {
    ++calls;
    return value + others_;
  }
  void broadcast(torch::Tensor&, int) override {}
  void barrier() override {}
  std::shared_ptr<Communicator> split(int, int) override { return nullptr; }
  void abort(int) override {}
  int calls = 0;

 private:
  int size_;
  double others_;
};

/// A rule that fires as told and counts how often it was asked.
class FixedRule final : public LocalStopRule {
 public:
  FixedRule(bool fires, Termination t, int* asked) : fires_(fires), t_(t), asked_(asked) {}
  bool fires(const IterationOutcome&) override {
    ++*asked_;
    return fires_;
  }
  StopDecision decision() const override { return {t_, "rule " + to_string(t_)}; }

 private:
  bool fires_;
  Termination t_;
  int* asked_;
};

/// Two rules (time limit, then interrupt) agreed over `comm`; `local` says which fire here.
StopDecision agree(CommunicatorPtr comm, bool time_here, bool interrupt_here, int* asked) {
  std::vector<LocalStopRulePtr> rules;
  rules.push_back(std::make_unique<FixedRule>(time_here, Termination::kTimeLimit, asked));
  rules.push_back(std::make_unique<FixedRule>(interrupt_here, Termination::kInterrupted, asked));
  RankAgreement agreement(std::move(comm), std::move(rules));
  return agreement.check({});
}

}  // namespace

TEST(TrainSchedule, FullBatchIsOneFreshBatchPerEpochOnlyWhenTheDataChanges) {
  BatchSchedule schedule({true, 50, 0, 1}, {});
  schedule.start_epoch(0, 0, false);
  std::optional<Batch> b = schedule.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->indices.defined());
  EXPECT_TRUE(b->fresh);  // the run's first epoch
  EXPECT_EQ(b->epoch_progress(), 1.0);
  EXPECT_FALSE(schedule.next());
  EXPECT_EQ(schedule.position(), (SchedulePosition{1, 0}));
  schedule.start_epoch(1, 0, false);
  EXPECT_FALSE(schedule.next()->fresh);
  schedule.start_epoch(2, 0, true);
  EXPECT_TRUE(schedule.next()->fresh);
}

TEST(TrainSchedule, MiniBatchesCoverAPermutationAndASmallTailJoinsThePreviousBatch) {
  BatchSchedule schedule(mini_batch(10, 3), {});
  const std::vector<Batch> batches = epoch_batches(schedule, 0, 4);  // 4, 4, 2 -> 4, 6
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].indices.numel(), 4);
  EXPECT_EQ(batches[1].indices.numel(), 6);
  EXPECT_TRUE(batches[1].last_in_epoch());
  EXPECT_DOUBLE_EQ(batches[0].epoch_progress(), 0.5);
  const torch::Tensor all = torch::cat({batches[0].indices, batches[1].indices});
  EXPECT_TRUE(torch::equal(std::get<0>(all.sort()), torch::arange(10, torch::kLong)));
  // The order depends on seed and epoch only.
  BatchSchedule again(mini_batch(10, 3), {});
  EXPECT_TRUE(torch::equal(epoch_batches(again, 0, 4)[0].indices, batches[0].indices));
  EXPECT_FALSE(torch::equal(epoch_batches(again, 1, 4)[0].indices, batches[0].indices));
}

TEST(TrainSchedule, PositionIsTheNextBatchAndAResumedScheduleContinuesThere) {
  BatchSchedule straight(mini_batch(12), {});
  epoch_batches(straight, 0, 4);
  straight.start_epoch(1, 4, false);
  straight.next();
  straight.next();
  EXPECT_EQ(straight.position(), (SchedulePosition{1, 2}));
  const Batch third = *straight.next();
  EXPECT_EQ(straight.position(), (SchedulePosition{2, 0}));

  BatchSchedule resumed(mini_batch(12), {1, 2});
  EXPECT_EQ(resumed.position(), (SchedulePosition{1, 2}));
  const std::vector<Batch> rest = epoch_batches(resumed, 1, 4);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].index, 2);
  EXPECT_TRUE(torch::equal(rest[0].indices, third.indices));
  EXPECT_EQ(resumed.position(), (SchedulePosition{2, 0}));
  // Later epochs start at their first batch.
  EXPECT_EQ(epoch_batches(resumed, 2, 4).size(), 3u);
}

TEST(TrainSchedule, ImpossibleResumePositionsAreRefused) {
  EXPECT_THROW(BatchSchedule(mini_batch(12), {-1, 0}), InvalidArgument);
  EXPECT_THROW(BatchSchedule({true, 12, 0, 1}, {0, 1}), InvalidArgument);
  BatchSchedule schedule(mini_batch(12), {0, 4});
  EXPECT_THROW(schedule.start_epoch(0, 4, false), InvalidArgument);  // 3 batches
}

TEST(TrainStop, CriteriaComposeInPrecedenceOrderAndLaterOnesAreNotChecked) {
  int asked = 0;
  std::vector<LocalStopRulePtr> local;
  local.push_back(std::make_unique<FixedRule>(true, Termination::kTimeLimit, &asked));
  std::vector<StopCriterionPtr> rules;
  rules.push_back(std::make_unique<NonFinite>());
  rules.push_back(std::make_unique<SolverTermination>());
  rules.push_back(std::make_unique<TargetReached>(0.1));
  rules.push_back(std::make_unique<UserRequest>());
  rules.push_back(std::make_unique<IterationLimit>(5));
  rules.push_back(std::make_unique<RankAgreement>(std::make_shared<SelfComm>(), std::move(local)));
  AnyOf stop(std::move(rules));

  IterationOutcome outcome;
  outcome.iterations = 3;
  outcome.finite = false;
  outcome.solver_termination = Termination::kConverged;
  StopDecision d = stop.check(outcome);
  EXPECT_EQ(d.termination, Termination::kNumericalFailure);
  EXPECT_NE(d.message.find("at iteration 3"), std::string::npos) << d.message;
  outcome.finite = true;
  EXPECT_EQ(stop.check(outcome).termination, Termination::kConverged);
  outcome.solver_termination = Termination::kRunning;
  outcome.solver_message = "a running step's message is not a stop's";
  outcome.metric = Metric{"rel_l2", 0.05, false};
  outcome.user_requested = true;
  EXPECT_EQ(stop.check(outcome).termination, Termination::kTargetReached);
  outcome.metric = Metric{"accuracy", 0.05, true};  // below the target in its direction
  EXPECT_EQ(stop.check(outcome).termination, Termination::kUserRequested);
  outcome.user_requested = false;
  outcome.iterations = 5;
  EXPECT_EQ(stop.check(outcome).termination, Termination::kMaxIterations);
  EXPECT_EQ(asked, 0);  // the rank agreement (a collective) only when nothing before stops
  outcome.iterations = 4;
  d = stop.check(outcome);
  EXPECT_EQ(d.termination, Termination::kTimeLimit);
  EXPECT_EQ(asked, 1);
}

TEST(TrainStop, TimeLimitReservesTheClosingMetricEvaluation) {
  TimeLimit limit(10.0, [] { return 9.0; });
  IterationOutcome outcome;
  outcome.closing_reserve_s = 0.5;
  EXPECT_FALSE(limit.fires(outcome));
  outcome.closing_reserve_s = 1.0;
  EXPECT_TRUE(limit.fires(outcome));
  EXPECT_FALSE(TimeLimit(0.0, [] { return 1e9; }).fires(outcome));  // 0: no limit
  EXPECT_FALSE(Interrupt({}).fires(outcome));
  EXPECT_EQ(Interrupt([] { return true; }).decision().message, "interrupted by a signal");
}

TEST(TrainStop, RanksAgreeOnTheFirstRuleThatFiresOnAnyRank) {
  int asked = 0;
  // Alone: this rank's answers, no collective.
  EXPECT_EQ(agree(std::make_shared<SelfComm>(), false, true, &asked).termination,
            Termination::kInterrupted);
  // 3 ranks, base 4: the others' counts packed as time + 4 * interrupt.
  auto comm = std::make_shared<OtherRanksComm>(3, 4.0 * 2);  // two others interrupted
  EXPECT_EQ(agree(comm, false, false, &asked).termination, Termination::kInterrupted);
  comm = std::make_shared<OtherRanksComm>(3, 1.0 + 4.0 * 2);  // one other out of time
  EXPECT_EQ(agree(comm, false, true, &asked).termination, Termination::kTimeLimit);
  comm = std::make_shared<OtherRanksComm>(3, 0.0);
  EXPECT_EQ(agree(comm, false, false, &asked).termination, Termination::kRunning);
  EXPECT_EQ(agree(comm, true, true, &asked).termination, Termination::kTimeLimit);
  EXPECT_EQ(comm->calls, 2);  // one allreduce per check, whatever fired
  EXPECT_EQ(asked, 10);       // every rule observed on every check
}

TEST(TrainStop, LastFiniteIterateRollsBackANonFiniteStep) {
  torch::Tensor x = torch::tensor({1.0, 2.0}, torch::kFloat64);
  LastFiniteIterate iterate(x);
  x += 1;
  EXPECT_TRUE(iterate.keep_if_finite(0.5));
  x[0] = std::nan("");
  EXPECT_FALSE(iterate.keep_if_finite(0.5));
  EXPECT_TRUE(torch::equal(x, torch::tensor({2.0, 3.0}, torch::kFloat64)));
  x += 1;
  EXPECT_FALSE(iterate.keep_if_finite(std::numeric_limits<double>::infinity()));
  EXPECT_TRUE(torch::equal(x, torch::tensor({2.0, 3.0}, torch::kFloat64)));
}

TEST(TrainRecord, CountersContinueAResumedRunAndOnlyFiniteLossesAreFinal) {
  ResumeState resume;
  resume.iteration = 7;
  resume.counters.gradient = 20;
  resume.initial_loss = 3.0;
  resume.final_loss = 1.0;
  resume.wall_time_s = 100.0;
  RunRecord record(resume);
  StepSummary step;
  step.loss = 0.5;
  step.gradient_evaluations = 2;
  IterationSummary row = record.add_step(step, true, 1.5);
  EXPECT_EQ(row.iteration, 8);
  EXPECT_EQ(row.gradient_evaluations, 22);
  EXPECT_EQ(row.epoch, 1.5);
  step.loss = kNaN;
  record.add_step(step, false, 2.0);
  const ResumeState state = record.resume_state({2, 0});
  EXPECT_EQ(state.epoch, 2);
  EXPECT_EQ(state.iteration, 9);
  EXPECT_EQ(state.counters.gradient, 24);
  EXPECT_EQ(state.initial_loss, 3.0);
  EXPECT_EQ(state.final_loss, 0.5);  // not the NaN of the failed step
  EXPECT_GE(state.wall_time_s, 100.0);  // the clock continues the earlier part's
}
