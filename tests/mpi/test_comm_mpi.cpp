// MpiComm collectives and loss integrity of DistributedObjective, on every rank count.
#include <gtest/gtest.h>

#include <vector>

#include "ddtrain/comm/mpi_comm.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/train.hpp"

using namespace ddtrain;

TEST(MpiComm, AllreduceSumFloat32AndFloat64) {
  auto comm = std::make_shared<MpiComm>();
  const int p = comm->size(), r = comm->rank();
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    torch::Tensor t = torch::full({5}, static_cast<double>(r + 1), dtype);
    comm->allreduce_sum(t);
    EXPECT_TRUE(torch::allclose(t, torch::full({5}, p * (p + 1) / 2.0, dtype)));
  }
  EXPECT_DOUBLE_EQ(comm->allreduce_sum(1.5), 1.5 * p);
}

TEST(MpiComm, BroadcastMakesAllRanksEqual) {
  auto comm = std::make_shared<MpiComm>();
  torch::manual_seed(100 + comm->rank());
  torch::Tensor t = torch::randn({1000}, torch::kFloat64);
  comm->broadcast(t, 0);
  torch::Tensor sum = t.clone();
  comm->allreduce_sum(sum);
  EXPECT_TRUE(torch::allclose(sum, t * comm->size(), 0, 0));
}

TEST(MpiComm, AccumulateSumsCorrections) {
  auto comm = std::make_shared<MpiComm>();
  const int p = comm->size();
  torch::Tensor c = torch::zeros({p * 3}, torch::kFloat64);
  c.narrow(0, comm->rank() * 3, 3).fill_(comm->rank() + 1);
  comm->accumulate(c);
  for (int r = 0; r < p; ++r) EXPECT_DOUBLE_EQ(c[r * 3 + 2].item<double>(), r + 1);
}

TEST(MpiComm, StartedAllreducesCompleteWhateverTheWaitOrder) {
  // Three reductions in flight at once on slices of one tensor (as plbfgs's slots), polled,
  // then waited for in reverse order; a fourth is never waited for: its handle's destructor
  // waits. Each gives what the blocking allreduce gives.
  auto comm = std::make_shared<MpiComm>();
  const int p = comm->size(), r = comm->rank();
  torch::Tensor packed = torch::arange(40, torch::kFloat64) * (r + 1);
  torch::Tensor expected = packed.clone();
  comm->allreduce_sum(expected);
  std::vector<PendingCollectivePtr> pending;
  std::vector<torch::Tensor> slots;
  for (int s = 0; s < 3; ++s) {
    slots.push_back(packed.narrow(0, 10 * s, 10));
    pending.push_back(comm->start_allreduce_sum(slots.back()));
    for (auto& q : pending) q->test();
  }
  for (int s = 2; s >= 0; --s) pending[s]->wait();
  EXPECT_TRUE(pending[0]->test());  // finished: stays finished
  {
    torch::Tensor last = packed.narrow(0, 30, 10);
    PendingCollectivePtr dropped = comm->start_allreduce_sum(last);
  }
  EXPECT_TRUE(torch::equal(packed, expected));
  EXPECT_DOUBLE_EQ(packed[39].item<double>(), 39.0 * p * (p + 1) / 2);
  torch::Tensor strided = torch::zeros({4, 4}, torch::kFloat64).t();
  EXPECT_THROW(comm->start_allreduce_sum(strided), CommError);
}

TEST(MpiComm, WrapsACommunicatorTheUserOwns) {
  // An embedding program's own communicator: the odd and the even ranks of the world.
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm mine = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, world_rank, &mine), MPI_SUCCESS);
  int expected_size = 0, expected_rank = 0;
  MPI_Comm_size(mine, &expected_size);
  MPI_Comm_rank(mine, &expected_rank);
  {
    auto comm = std::make_shared<MpiComm>(mine);  // not owned: the user frees it
    EXPECT_EQ(comm->handle(), mine);
    EXPECT_EQ(comm->size(), expected_size);
    EXPECT_EQ(comm->rank(), expected_rank);
    torch::Tensor t = torch::ones({4}, torch::kFloat64);
    comm->allreduce_sum(t);
    EXPECT_TRUE(torch::equal(t, torch::full({4}, static_cast<double>(expected_size), torch::kFloat64)));
  }
  // Still valid after the wrapper is gone.
  int size_after = 0;
  EXPECT_EQ(MPI_Comm_size(mine, &size_after), MPI_SUCCESS);
  EXPECT_EQ(size_after, expected_size);
  MPI_Comm_free(&mine);

  // Handed over with take_ownership: freed by the wrapper (no leak, no double free).
  MPI_Comm owned = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_dup(MPI_COMM_WORLD, &owned), MPI_SUCCESS);
  {
    MpiComm comm(owned, /*take_ownership=*/true);
    EXPECT_DOUBLE_EQ(comm.allreduce_sum(1.0), static_cast<double>(comm.size()));
  }
}

TEST(MpiComm, SplitGivesGroups) {
  auto world = std::make_shared<MpiComm>();
  Layout layout = make_layout(world, 1);
  EXPECT_EQ(layout.data->size(), 1);
  EXPECT_EQ(layout.across->size(), world->size());
  Layout one_group = make_layout(world, 0);
  EXPECT_EQ(one_group.data->size(), world->size());
  EXPECT_EQ(one_group.groups, 1);
}

TEST(DistributedObjective, LossIntegrityWithUnequalShards) {
  // Global data: y_i = i for i < N; loss = mean_i (w - y_i)^2. Rank r holds r+1 samples... of
  // unequal size; the distributed loss and gradient must equal the serial ones.
  auto comm = std::make_shared<MpiComm>();
  const int p = comm->size(), r = comm->rank();
  std::vector<double> all;
  std::vector<int> owner;
  for (int k = 0; k < p; ++k)
    for (int i = 0; i <= 2 * k; ++i) {
      all.push_back(0.37 * all.size() - 1.0);
      owner.push_back(k);
    }
  std::vector<double> mine;
  for (size_t i = 0; i < all.size(); ++i)
    if (owner[i] == r) mine.push_back(all[i]);
  torch::nn::Linear model(1, 1);
  model->to(torch::kFloat64);
  FlatParameters params(*model);
  torch::Tensor y = torch::tensor(mine, torch::kFloat64).unsqueeze(1);
  torch::Tensor inputs = torch::ones_like(y);
  LocalObjective local(params, [&] { return (model->forward(inputs) - y).pow(2).mean(); });
  DistributedObjective global(local, comm, static_cast<double>(mine.size()));
  torch::Tensor x = torch::tensor({0.25, -0.5}, torch::kFloat64);
  torch::Tensor g = torch::empty_like(x);
  const double loss = global.evaluate(x, &g);

  torch::Tensor ys = torch::tensor(all, torch::kFloat64);
  const double w = 0.25 + -0.5;  // weight * 1 + bias
  const double expected = (w - ys).pow(2).mean().item<double>();
  const double expected_g = (2 * (w - ys)).mean().item<double>();
  EXPECT_NEAR(loss, expected, 1e-12 * std::abs(expected));
  EXPECT_NEAR(g[0].item<double>(), expected_g, 1e-12);
  EXPECT_NEAR(g[1].item<double>(), expected_g, 1e-12);
  EXPECT_NEAR(global.evaluate(x, nullptr), expected, 1e-12 * std::abs(expected));
}
